//! Reading a Linux arm64 Image header (Documentation/arch/arm64/booting.rst).

/// Offset of the `ARM\x64` magic in the Image header.
const MAGIC_OFFSET: usize = 0x38;
/// The magic.
const MAGIC: &[u8; 4] = b"ARM\x64";
/// Offset of the little-endian text_offset field.
const TEXT_OFFSET_OFFSET: usize = 8;

/// Offset of the little-endian image_size field: bytes the kernel occupies
/// once running (text, data and bss), which the file does not include.
const IMAGE_SIZE_OFFSET: usize = 16;

/// Bytes a Linux Image needs at its load address: its header's image_size, or
/// the file's length if that is larger (or the field is 0, as in kernels before 3.17).
///
/// # Errors
/// When the bytes are not an arm64 Image.
pub fn linux_image_size(image: &[u8]) -> Result<u64, &'static str> {
    linux_text_offset(image)?;
    let field = image
        .get(IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .ok_or("kernel too short for an arm64 Image header")?;
    Ok(u64::from_le_bytes(field).max(image.len() as u64))
}

/// The offset from a 2 MiB aligned RAM base at which the Image must be loaded.
///
/// # Errors
/// When the bytes are not an arm64 Image.
pub fn linux_text_offset(image: &[u8]) -> Result<u64, &'static str> {
    let magic = image
        .get(MAGIC_OFFSET..MAGIC_OFFSET + 4)
        .ok_or("kernel too short for an arm64 Image header")?;
    if magic != MAGIC {
        return Err("kernel is not an arm64 Image (no ARM\\x64 magic)");
    }
    let field = image
        .get(TEXT_OFFSET_OFFSET..TEXT_OFFSET_OFFSET + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .ok_or("kernel too short for an arm64 Image header")?;
    Ok(u64::from_le_bytes(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_offset_of_an_image() {
        let mut image = [0u8; 64];
        image[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(linux_text_offset(&image), Ok(0x8_0000));
    }

    #[test]
    fn image_size_covers_bss_beyond_the_file() {
        let mut image = [0u8; 64];
        image[16..24].copy_from_slice(&0x10_0000u64.to_le_bytes());
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(linux_image_size(&image), Ok(0x10_0000));
        image[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(linux_image_size(&image), Ok(64));
    }

    #[test]
    fn refuses_what_is_not_an_image() {
        assert!(linux_text_offset(&[0u8; 64]).is_err());
        assert!(linux_text_offset(&[0u8; 10]).is_err());
    }
}
