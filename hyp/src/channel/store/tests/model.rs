//! Random operation sequences against a model of paths: the same results, the
//! same tree after every step, and after remounts the last committed tree.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{at, dump, pattern};
use crate::channel::fs::{Ino, Kind};
use crate::channel::store::disk::testing::MemDisk;
use crate::channel::store::{Limits, Store, StoreError, ROOT};

#[derive(Clone, Debug)]
enum Step {
    Create(usize, usize),
    Mkdir(usize, usize),
    Write(usize, u16, u16, u8),
    Truncate(usize, u16),
    Rename(usize, usize, usize),
    Unlink(usize),
    Rmdir(usize),
    OpenUnlinkClose(usize),
    Commit,
    Remount,
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..8usize, 0..3usize).prop_map(|(d, n)| Step::Create(d, n)),
        (0..8usize, 0..3usize).prop_map(|(d, n)| Step::Mkdir(d, n)),
        (0..8usize, 0..20_000u16, 1..9000u16, any::<u8>())
            .prop_map(|(f, o, l, s)| Step::Write(f, o, l, s)),
        (0..8usize, 0..20_000u16).prop_map(|(f, s)| Step::Truncate(f, s)),
        (0..8usize, 0..8usize, 0..3usize).prop_map(|(a, d, n)| Step::Rename(a, d, n)),
        (0..8usize).prop_map(Step::Unlink),
        (0..8usize).prop_map(Step::Rmdir),
        (0..8usize).prop_map(Step::OpenUnlinkClose),
        Just(Step::Commit),
        Just(Step::Remount),
    ]
}

/// Path -> (is a directory, contents).
type Model = BTreeMap<String, (bool, Vec<u8>)>;

fn pick(model: &Model, index: usize, dirs: Option<bool>) -> Option<String> {
    let candidates: Vec<&String> = model
        .iter()
        .filter(|(_, (is_dir, _))| dirs.is_none_or(|want| want == *is_dir))
        .map(|(path, _)| path)
        .collect();
    if candidates.is_empty() {
        None
    } else {
        Some(candidates[index % candidates.len()].clone())
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        alloc::format!("/{name}")
    } else {
        alloc::format!("{dir}/{name}")
    }
}

fn resolve(store: &Store<MemDisk>, path: &str) -> Ino {
    let mut ino = ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = store.lookup(ino, part).unwrap();
    }
    ino
}

fn parent_and_name(path: &str) -> (String, String) {
    let cut = path.rfind('/').unwrap();
    let parent = if cut == 0 {
        String::from("/")
    } else {
        String::from(&path[..cut])
    };
    (parent, String::from(&path[cut + 1..]))
}

fn has_children(model: &Model, path: &str) -> bool {
    let prefix = alloc::format!("{path}/");
    model.keys().any(|key| key.starts_with(&prefix))
}

/// The store's tree as the model sees it.
fn view(store: &mut Store<MemDisk>) -> Model {
    dump(store)
        .into_iter()
        .map(|(path, seen)| (path, (seen.kind == Kind::Dir, seen.data)))
        .collect()
}

fn apply(
    store: &mut Store<MemDisk>,
    model: &mut Model,
    committed: &mut Model,
    step: &Step,
    time: u64,
) {
    let now = at(time);
    match *step {
        Step::Create(dir, name) | Step::Mkdir(dir, name) => {
            let dir = pick(model, dir, Some(true)).unwrap();
            let path = join(&dir, NAMES[name]);
            let ino = resolve(store, &dir);
            let result = if matches!(step, Step::Create(..)) {
                store.create(ino, NAMES[name], 0o644, 0, now)
            } else {
                store.mkdir(ino, NAMES[name], 0o755, 0, now)
            };
            match model.entry(path) {
                alloc::collections::btree_map::Entry::Occupied(_) => {
                    assert_eq!(result, Err(StoreError::Exists));
                }
                alloc::collections::btree_map::Entry::Vacant(slot) => {
                    result.unwrap();
                    slot.insert((matches!(step, Step::Mkdir(..)), Vec::new()));
                }
            }
        }
        Step::Write(file, offset, len, seed) => {
            let Some(path) = pick(model, file, Some(false)) else {
                return;
            };
            let ino = resolve(store, &path);
            let data = pattern(u32::from(seed), usize::from(len));
            assert_eq!(
                store.write(ino, u64::from(offset), &data, now),
                Ok(data.len())
            );
            let contents = &mut model.get_mut(&path).unwrap().1;
            let end = usize::from(offset) + data.len();
            if contents.len() < end {
                contents.resize(end, 0);
            }
            contents[usize::from(offset)..end].copy_from_slice(&data);
        }
        Step::Truncate(file, size) => {
            let Some(path) = pick(model, file, Some(false)) else {
                return;
            };
            let ino = resolve(store, &path);
            store.set_size(ino, u64::from(size), now).unwrap();
            model.get_mut(&path).unwrap().1.resize(usize::from(size), 0);
        }
        Step::Rename(source, dir, name) => {
            let source = pick(model, source, None).unwrap();
            if source == "/" {
                return;
            }
            let dir = pick(model, dir, Some(true)).unwrap();
            let target = join(&dir, NAMES[name]);
            let (source_dir, source_name) = parent_and_name(&source);
            let result = store.rename(
                resolve(store, &source_dir),
                &source_name,
                resolve(store, &dir),
                NAMES[name],
                now,
            );
            let source_is_dir = model[&source].0;
            let expected = if source == target {
                Ok(())
            } else if source_is_dir && (target.starts_with(&alloc::format!("{source}/"))) {
                Err(StoreError::InvalidMove)
            } else {
                match model.get(&target) {
                    Some((true, _)) if !source_is_dir => Err(StoreError::IsDir),
                    Some((false, _)) if source_is_dir => Err(StoreError::NotDir),
                    Some((true, _)) if has_children(model, &target) => Err(StoreError::NotEmpty),
                    _ => Ok(()),
                }
            };
            assert_eq!(result.map(|_| ()), expected, "rename {source} -> {target}");
            if expected.is_ok() && source != target {
                model.remove(&target);
                let prefix = alloc::format!("{source}/");
                let moved: Vec<String> = model
                    .keys()
                    .filter(|key| **key == source || key.starts_with(&prefix))
                    .cloned()
                    .collect();
                for key in moved {
                    let value = model.remove(&key).unwrap();
                    model.insert(alloc::format!("{target}{}", &key[source.len()..]), value);
                }
            }
        }
        Step::Unlink(index) | Step::Rmdir(index) | Step::OpenUnlinkClose(index) => {
            let Some(path) = pick(model, index, None) else {
                return;
            };
            if path == "/" {
                return;
            }
            let (dir, name) = parent_and_name(&path);
            let dir_ino = resolve(store, &dir);
            let is_dir = model[&path].0;
            let ino = resolve(store, &path);
            let hold = matches!(step, Step::OpenUnlinkClose(_));
            if hold {
                store.open(ino).unwrap();
            }
            let result = if matches!(step, Step::Rmdir(_)) {
                store.rmdir(dir_ino, &name, now)
            } else {
                store.unlink(dir_ino, &name, now)
            };
            let expected = match (matches!(step, Step::Rmdir(_)), is_dir) {
                (false, true) => Err(StoreError::IsDir),
                (true, false) => Err(StoreError::NotDir),
                (true, true) if has_children(model, &path) => Err(StoreError::NotEmpty),
                _ => Ok(ino),
            };
            assert_eq!(result, expected);
            if expected.is_ok() {
                model.remove(&path);
            }
            if hold {
                if expected.is_ok() && !is_dir {
                    let mut buf = alloc::vec![0; 4];
                    store.read(ino, 0, &mut buf).unwrap();
                }
                store.close(ino).unwrap();
            }
        }
        Step::Commit => {
            store.commit().unwrap();
            *committed = model.clone();
        }
        Step::Remount => {
            let old = core::mem::replace(
                store,
                Store::format(MemDisk::new(512), Limits::default(), now).unwrap(),
            );
            *store = Store::mount(old.into_disk(), Limits::default()).unwrap();
            *model = committed.clone();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_operations_match_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        let mut store = Store::format(MemDisk::new(2048 * 8), Limits::default(), at(0)).unwrap();
        let mut model = Model::new();
        model.insert(String::from("/"), (true, Vec::new()));
        let mut committed = model.clone();
        for (time, step) in steps.iter().enumerate() {
            apply(&mut store, &mut model, &mut committed, step, time as u64 + 1);
            prop_assert_eq!(&view(&mut store), &model, "after {:?}", step);
        }
        store.commit().unwrap();
        let mut store = Store::mount(store.into_disk(), Limits::default()).unwrap();
        prop_assert_eq!(&view(&mut store), &model);
    }
}
