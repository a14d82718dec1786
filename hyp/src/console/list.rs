//! A slice printed as `{:?}` prints a list of numbers, without `Debug`.

use core::fmt;

/// Shows `[1, 2]` for `&[1, 2]`, as `{:?}` does for integers, through each item's
/// `Display`: a `{:?}` of a `Vec` brings the `Debug` list builder and the
/// hex-capable integer `Debug` into the image for one boot line.
pub struct List<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for List<'_, T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[")?;
        for (index, item) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str(", ")?;
            }
            fmt::Display::fmt(item, formatter)?;
        }
        formatter.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::List;

    #[test]
    fn prints_as_debug_of_a_slice_of_integers() {
        for cpus in [&[][..], &[3][..], &[0, 1, 2, 3][..]] {
            assert_eq!(format!("{}", List(cpus)), format!("{cpus:?}"));
        }
    }
}
