use super::*;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Janus' boot map on a CPU with 44 physical address bits (Cortex-A72).
const LIMITS: MapLimits = MapLimits {
    boot_end: 4 * GIB,
    boot_ram: (GIB, 4 * GIB),
    reach: 512 * GIB,
};

/// QEMU virt's RAM with `-m <size>`: from 1 GiB up.
fn virt(size: u64) -> [(u64, u64); 1] {
    [(GIB, size)]
}

fn total(list: &[(u64, u64)]) -> u64 {
    list.iter().map(|&(_, size)| size).sum()
}

/// Every byte of RAM is either usable or unused, never both.
fn assert_partition(ram: &[(u64, u64)], map: &RamMap) {
    assert_eq!(
        total(&map.usable) + total(&map.unused),
        total(&merged_sizes(ram))
    );
    for &(base, size) in &map.usable {
        for &(other, other_size) in &map.unused {
            assert!(base + size <= other || other + other_size <= base);
        }
    }
}

fn merged_sizes(ram: &[(u64, u64)]) -> Vec<(u64, u64)> {
    merged(ram)
        .into_iter()
        .map(|(start, end)| (start, end - start))
        .collect()
}

#[test]
fn two_gib_board_needs_nothing_beyond_the_boot_map() {
    let map = plan(&virt(2 * GIB), &LIMITS);
    assert!(map.added.is_empty());
    assert_eq!(map.usable, [(GIB, 2 * GIB)]);
    assert!(map.unused.is_empty());
}

#[test]
fn four_gib_board_gets_the_fifth_gib_as_one_block() {
    let map = plan(&virt(4 * GIB), &LIMITS);
    assert_eq!(map.added, [Mapping::Block1G(Pa(4 * GIB))]);
    assert_eq!(map.usable, [(GIB, 4 * GIB)]);
    assert!(map.unused.is_empty());
}

#[test]
fn eight_gib_board_gets_five_blocks() {
    let map = plan(&virt(8 * GIB), &LIMITS);
    let expected: Vec<Mapping> = (4..9).map(|gib| Mapping::Block1G(Pa(gib * GIB))).collect();
    assert_eq!(map.added, expected);
    assert_eq!(map.usable, [(GIB, 8 * GIB)]);
    assert!(map.unused.is_empty());
}

#[test]
fn ram_covering_part_of_a_gib_gets_2_mib_blocks_only_over_ram() {
    // -m 4500M: RAM ends 404 MiB into the sixth GiB.
    let map = plan(&virt(4500 * MIB), &LIMITS);
    assert_eq!(map.added.first(), Some(&Mapping::Block1G(Pa(4 * GIB))));
    assert_eq!(map.added.len(), 1 + 404 / 2);
    assert!(map.added[1..]
        .iter()
        .all(|block| matches!(block, Mapping::Block2M(_)) && block.level1_index() == 5));
    let last = map.added.last().copied().map(Mapping::range);
    assert_eq!(last, Some((GIB + 4500 * MIB - 2 * MIB, 2 * MIB)));
    assert_eq!(map.usable, [(GIB, 4500 * MIB)]);
    assert!(map.unused.is_empty());
}

#[test]
fn ragged_ends_above_the_boot_map_are_left_unused() {
    // 1 MiB into a 2 MiB block at both ends.
    let ram = [(5 * GIB + MIB, 4 * MIB)];
    let map = plan(&ram, &LIMITS);
    assert_eq!(map.added, [Mapping::Block2M(Pa(5 * GIB + 2 * MIB))]);
    assert_eq!(map.usable, [(5 * GIB + 2 * MIB, 2 * MIB)]);
    assert_eq!(map.unused, [(5 * GIB + MIB, MIB), (5 * GIB + 4 * MIB, MIB)]);
    assert_partition(&ram, &map);
}

#[test]
fn raspberry_pi_4_with_8_gib_keeps_its_low_ram_out_of_the_device_gib() {
    let ram = [
        (0, 0x3b40_0000),
        (0x4000_0000, 0xbc00_0000),
        (0x1_0000_0000, 4 * GIB),
    ];
    let map = plan(&ram, &LIMITS);
    let expected: Vec<Mapping> = (4..8).map(|gib| Mapping::Block1G(Pa(gib * GIB))).collect();
    assert_eq!(map.added, expected);
    assert_eq!(
        map.usable,
        [(0x4000_0000, 0xbc00_0000), (0x1_0000_0000, 4 * GIB)]
    );
    // RAM in the first GiB is Device memory in the boot map: never a personality's.
    assert_eq!(map.unused, [(0, 0x3b40_0000)]);
    assert_partition(&ram, &map);
}

#[test]
fn ram_beyond_the_reach_is_left_unused() {
    // A CPU with 36 physical address bits: 64 GiB.
    let limits = MapLimits {
        reach: reach_bytes(39, 40, 36, 39),
        ..LIMITS
    };
    let ram = virt(80 * GIB);
    let map = plan(&ram, &limits);
    assert_eq!(map.added.len(), 60);
    assert_eq!(map.added.last(), Some(&Mapping::Block1G(Pa(63 * GIB))));
    assert_eq!(map.usable, [(GIB, 63 * GIB)]);
    assert_eq!(map.unused, [(64 * GIB, 17 * GIB)]);
    assert_partition(&ram, &map);
}

#[test]
fn ram_past_the_table_is_left_unused_however_large() {
    let ram = [(GIB, 1024 * GIB)];
    let map = plan(&ram, &LIMITS);
    assert_eq!(map.added.len(), 508);
    assert!(map
        .added
        .iter()
        .all(|block| block.level1_index() < TABLE_ENTRIES));
    assert_eq!(map.usable, [(GIB, 511 * GIB)]);
    assert_eq!(map.unused, [(512 * GIB, 513 * GIB)]);
}

#[test]
fn overlapping_unsorted_and_empty_regions_are_merged() {
    let ram = [
        (6 * GIB, GIB),
        (0, 0),
        (4 * GIB, GIB + 512 * MIB),
        (5 * GIB, GIB),
    ];
    let map = plan(&ram, &LIMITS);
    let expected: Vec<Mapping> = (4..7).map(|gib| Mapping::Block1G(Pa(gib * GIB))).collect();
    assert_eq!(map.added, expected);
    assert_eq!(map.usable, [(4 * GIB, 3 * GIB)]);
    assert!(map.unused.is_empty());
}

#[test]
fn a_region_that_wraps_the_address_space_does_not_overflow() {
    let ram = [(u64::MAX - GIB, 2 * GIB)];
    let map = plan(&ram, &LIMITS);
    assert!(map.added.is_empty());
    assert!(map.usable.is_empty());
    assert_eq!(map.unused, [(u64::MAX - GIB, GIB)]);
}

#[test]
fn reach_is_the_least_of_table_output_cpu_and_stage_2() {
    assert_eq!(reach_bytes(39, 40, 44, 39), 512 * GIB);
    assert_eq!(reach_bytes(39, 40, 36, 39), 64 * GIB);
    assert_eq!(reach_bytes(39, 40, 32, 39), 4 * GIB);
    assert_eq!(reach_bytes(48, 48, 48, 40), 1024 * GIB);
}

#[test]
fn descriptors_have_the_architected_bits() {
    // Device-nGnRE, AF, AP[1] RES1, XN.
    assert_eq!(device_block(0), 0x0040_0000_0000_0441);
    // Attr 1 (Normal), inner shareable, AF, AP[1]; executable.
    assert_eq!(ram_block(GIB, true), 0x0000_0000_4000_0745);
    assert_eq!(ram_block(4 * GIB, false), 0x0040_0001_0000_0745);
    assert_eq!(table_descriptor(0x4028_1000), 0x4028_1003);
    assert_eq!(MAIR_EL2_VALUE, 0xff04);
}

#[test]
fn existing_descriptors_are_sorted_by_kind() {
    assert_eq!(existing(0), Existing::Invalid);
    assert_eq!(existing(device_block(0)), Existing::Block);
    assert_eq!(existing(ram_block(2 * GIB, false)), Existing::Block);
    assert_eq!(
        existing(table_descriptor(0x4028_1000)),
        Existing::Table(Pa(0x4028_1000))
    );
}

#[test]
fn a_2_mib_block_knows_its_entries() {
    let block = Mapping::Block2M(Pa(5 * GIB + 6 * MIB));
    assert_eq!((block.level1_index(), block.level2_index()), (5, 3));
    assert_eq!(block.descriptor(), ram_block(5 * GIB + 6 * MIB, false));
    let gib = Mapping::Block1G(Pa(7 * GIB));
    assert_eq!((gib.level1_index(), gib.range()), (7, (7 * GIB, GIB)));
}
