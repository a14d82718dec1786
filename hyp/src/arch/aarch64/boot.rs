//! Bringing Janus up: the board from its device tree, the personalities from the
//! boot bundle, their stage-2 tables and images, then every CPU into its idle loop.

use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{Readable, CNTPCT_EL0, ID_AA64ISAR0_EL1, ID_AA64MMFR0_EL1};
use spin::{Mutex, Once};

use crate::arch::aarch64::entry::{self, MAX_CPUS};
use crate::arch::aarch64::{
    self as arch, exception::halt, firmware, gic, heap, memory, mmu, percpu, run, storage,
};
use crate::board::{Board, PsciMethod};
use crate::console::list::List;
use crate::dev::virtio::blk::BlkDevice;
use crate::dev::virtio::mmio::MmioTransport;
use crate::janus_println;
use crate::mm::stage2::{self, Stage2Table};
use crate::trap::virtio::BlockDevice;
use crate::vm::bundle::{Bundle, GuestKind, PersonalityConfig};
use crate::vm::config::{self, Limits};
use crate::vm::devices::Devices;
use crate::vm::devicetree::layout::{BLOCK_BASE, BLOCK_SPI};
use crate::vm::devicetree::{self, GuestTree};
use crate::vm::entropy::{BootEntropy, GuestSeeds, RNG_SEED_BYTES};
use crate::vm::placement::{self, RAM_ALIGN};
use crate::vm::ram::GuestRam;
use crate::vm::{Personality, VmState};

/// Janus' version, printed at boot.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Bytes at the top of each personality's RAM that hold its device tree.
const DTB_AREA_BYTES: u64 = RAM_ALIGN;

/// Where Janus says why it stops when the device tree cannot tell it the
/// console: QEMU virt's PL011.
const FALLBACK_UART: u64 = 0x0900_0000;

/// Bytes in a MiB, for the boot lines.
const MIB: u64 = 1 << 20;

/// What Janus needs to (re)start one personality.
pub struct GuestImage {
    /// Kernel bytes, inside the boot bundle.
    pub kernel: &'static [u8],
    /// Initial RAM disk bytes, inside the boot bundle (may be empty).
    pub initrd: &'static [u8],
    /// What its device tree describes; generated again at every start with
    /// that start's seeds.
    pub tree: GuestTree<'static>,
    /// How many times it has started (numbers each start's seeds).
    pub starts: AtomicU64,
    /// Where the kernel is loaded and entered.
    pub kernel_ipa: u64,
    /// Where the initrd is loaded.
    pub initrd_ipa: u64,
    /// Where the device tree is loaded (x0 at entry).
    pub dtb_ipa: u64,
    /// Stage-2 root table: `ram`'s, kept here so that entering a vCPU needs no lock.
    pub root: u64,
    /// Its stage-2 table and which RAM chunks are present (cleared since its start).
    pub ram: Mutex<GuestRam<heap::GlobalFrames>>,
    /// VTCR_EL2 for its stage-2 table.
    pub vtcr: u64,
    /// CNTVOFF_EL2: the physical count when it (re)started, so its clock starts near 0.
    pub cntvoff: AtomicU64,
}

/// The board, read once by the boot CPU.
static BOARD: Once<Board> = Once::new();
/// The key of every personality's boot seeds, from the board's boot entropy;
/// `None` when the loader gave none. Set once by the boot CPU.
static ENTROPY: Once<Option<BootEntropy>> = Once::new();
/// The personalities, created once by the boot CPU before the other CPUs start.
static PERSONALITIES: Once<Vec<Personality>> = Once::new();
/// Per personality (same index): its image and stage-2 root.
static IMAGES: Once<Vec<GuestImage>> = Once::new();
/// Per physical CPU: the (personality, vCPU) pinned to it.
static ASSIGNMENTS: Once<[Option<(usize, usize)>; MAX_CPUS]> = Once::new();

/// Every personality (empty before boot finishes).
pub fn personalities() -> &'static [Personality] {
    PERSONALITIES.get().map_or(&[], |list| list.as_slice())
}

/// The vCPU pinned to physical CPU `pcpu`.
pub fn assignment(pcpu: usize) -> Option<(&'static Personality, usize)> {
    let (vm, vcpu) = (*ASSIGNMENTS.get()?.get(pcpu)?)?;
    Some((personalities().get(vm)?, vcpu))
}

/// The MPIDR affinity of physical CPU `pcpu`.
pub fn cpu_mpidr(pcpu: usize) -> Option<u64> {
    BOARD.get()?.cpus.get(pcpu).copied()
}

/// A personality's image and stage-2 root.
pub fn stage2(vm: &Personality) -> &'static GuestImage {
    match IMAGES.get().and_then(|images| images.get(vm.id)) {
        Some(image) => image,
        // Personalities and images are created together at boot.
        None => panic!("no image for personality {}", vm.id),
    }
}

/// Entry from `entry.S` on every CPU, with the MMU on: CPU 0 gets the device tree.
pub extern "C" fn rust_entry(cpu: usize, dtb: u64) -> ! {
    if cpu == 0 {
        primary(dtb)
    } else {
        secondary(cpu)
    }
}

fn stop_boot(reason: core::fmt::Arguments) -> ! {
    janus_println!("boot failed: {reason}");
    firmware::system_off();
    halt()
}

fn primary(dtb: u64) -> ! {
    heap::init();
    // SAFETY: x0 at entry holds the loader's device tree, which stays in place
    // (Janus reserves it and never hands it to a personality).
    let Some(fdt) = (unsafe { arch::boot_fdt(dtb) }) else {
        // SAFETY: best effort on the virt board's PL011, used by nothing else yet.
        unsafe { arch::uart::install(FALLBACK_UART) };
        stop_boot(format_args!(
            "no device tree Janus can read at {dtb:#x} (it must lie in RAM below 4 GiB)"
        ));
    };
    let mut board = match Board::from_fdt(&fdt) {
        Ok(board) => board,
        Err(_) => {
            // Without a UART there is nowhere to say why; QEMU's virt board has one here.
            // SAFETY: best effort on the virt board's PL011, used by nothing else yet.
            unsafe { arch::uart::install(FALLBACK_UART) };
            stop_boot(format_args!("the device tree lacks something Janus needs"));
        }
    };
    // SAFETY: the device tree names this PL011; the boot map has it as Device
    // memory, and only the console uses it.
    unsafe { arch::uart::install(board.uart) };
    firmware::set_conduit(match board.psci {
        PsciMethod::Smc => firmware::Conduit::Smc,
        PsciMethod::Hvc => firmware::Conduit::Hvc,
    });

    let (hyp_start, hyp_end) = entry::reserved_range();
    janus_println!("Janus {VERSION} at EL2 on {}", board.model);
    janus_println!(
        "reserved {hyp_start:#x}-{hyp_end:#x} ({} KiB: image {} KiB, stacks {} KiB, heap {} KiB, page-table pool {} KiB)",
        (hyp_end - hyp_start) / 1024,
        entry::image_bytes() / 1024,
        (entry::STACK_SIZE * MAX_CPUS) / 1024,
        heap::HEAP_BYTES / 1024,
        heap::FRAME_POOL_BYTES / 1024
    );
    for &(base, size) in &board.ram {
        janus_println!("RAM {base:#x}-{:#x} ({} MiB)", base + size, size >> 20);
    }
    let pa_bits = pa_range_bits();
    // Before anything reads RAM past the boot map (the bundle may lie there).
    let ram_map = match mmu::map_ram(&board.ram, pa_bits) {
        Ok(map) => map,
        Err(error) => stop_boot(format_args!("mapping the board's RAM: {error}")),
    };
    // Level-2 tables of Janus' own map, where RAM covers a GiB only in part.
    let (hyp_frames, _) = heap::frame_usage();
    for &(base, size) in &ram_map.unused {
        let (amount, unit) = if size >= MIB {
            (size / MIB, "MiB")
        } else {
            (size / 1024, "KiB")
        };
        janus_println!(
            "RAM {base:#x}-{:#x} ({amount} {unit}) is beyond what Janus maps; left unused",
            base + size
        );
    }
    janus_println!(
        "{} CPUs, GICv3 distributor {:#x} redistributors {:#x}, console PL011 {:#x}",
        board.cpus.len(),
        board.gicd,
        board.gicr,
        board.uart
    );
    storage::init(&board.virtio_mmio);
    super::rtc::init(board.rtc);
    // The loader's seed leaves the board description: only the key stays.
    let mut seed = core::mem::take(&mut board.boot_seed);
    let loader_bytes = seed.len();
    let random = hardware_random();
    seed.extend_from_slice(random.as_ref().map_or(&[][..], |bytes| &bytes[..]));
    let entropy = BootEntropy::new(&seed, CNTPCT_EL0.get());
    if entropy.is_some() {
        janus_println!(
            "boot entropy: {} bytes from /chosen, {} from the CPU (RNDR); each personality start gets its own rng-seed and kaslr-seed",
            loader_bytes,
            seed.len() - loader_bytes
        );
    } else {
        janus_println!(
            "no boot entropy (nothing in /chosen, no RNDR): personalities boot without rng-seed or kaslr-seed"
        );
    }
    seed.fill(0);
    core::hint::black_box(&seed);
    ENTROPY.call_once(|| entropy);
    let board = BOARD.call_once(|| board);

    let Some((bundle_start, bundle_end)) = board.initrd else {
        stop_boot(format_args!("no boot bundle: pass it to QEMU with -initrd"));
    };
    let bundle_mapped = ram_map
        .usable
        .iter()
        .any(|&(base, size)| bundle_start >= base && bundle_end - base <= size);
    if !bundle_mapped {
        stop_boot(format_args!(
            "the boot bundle at {bundle_start:#x}-{bundle_end:#x} lies outside the RAM Janus maps"
        ));
    }
    // SAFETY: the loader placed the bundle there; Janus keeps it out of every
    // personality's RAM and never writes it.
    let bytes = unsafe { arch::boot_blob(bundle_start, bundle_end) };
    let bundle = match Bundle::parse(bytes) {
        Ok(bundle) => bundle,
        Err(error) => stop_boot(format_args!("boot bundle: {error}")),
    };
    let configs = bundle.personalities();
    let cpu_count = board.cpus.len().min(MAX_CPUS);
    let limits = Limits::with_physical_cpus(cpu_count as u32);
    if let Err(error) = config::validate(configs, &limits) {
        stop_boot(format_args!("configuration: {error}"));
    }

    let names: Vec<&str> = configs.iter().map(|config| config.name).collect();
    super::channel::init(&names, bundle.channel());

    let reserved = [
        (hyp_start, hyp_end - hyp_start),
        (dtb, fdt.total_size() as u64),
        (bundle_start, bundle_end - bundle_start),
    ];
    let requests: Vec<placement::Request> =
        configs.iter().map(|c| (c.ram_bytes, c.ram_base)).collect();
    // Only RAM Janus maps: it clears and loads a personality's RAM through its own map.
    let placed = match placement::place(&requests, &ram_map.usable, &reserved) {
        Ok(placed) => placed,
        Err(error) => stop_boot(format_args!("placing personality RAM: {error}")),
    };

    let mut vms = Vec::new();
    let mut images = Vec::new();
    let mut assignments = [None; MAX_CPUS];
    for (index, (config, &(base, size))) in configs.iter().zip(&placed).enumerate() {
        let pcpus: Vec<usize> = (0..cpu_count)
            .filter(|cpu| config.cpus & (1 << cpu) != 0)
            .take(config.vcpus as usize)
            .collect();
        for (vcpu, &pcpu) in pcpus.iter().enumerate() {
            assignments[pcpu] = Some((index, vcpu));
        }
        // Every personality gets a vGIC, for its timers' interrupts at least.
        let devices = match config.kind {
            GuestKind::Linux => Devices::new(pcpus.len()),
            GuestKind::BareMetal => Devices::interrupts_only(pcpus.len()),
        };
        let devices = match devices {
            Ok(devices) => Some(devices),
            Err(error) => stop_boot(format_args!("{}: virtual GIC: {error:?}", config.name)),
        };
        let vm = Personality::new(index, config.name, config.kind, base, size, &pcpus, devices);
        let vm = match block_device(config, (base, size)) {
            Some(block) => vm.with_block(block),
            None => vm,
        };
        let vm = match super::channel::device(index as u8, config.name) {
            Some(shared) => vm.with_shared(shared),
            None => vm,
        };
        let ram = build_stage2(&vm);
        let image = match guest_image(&vm, config, ram, pa_bits) {
            Ok(image) => image,
            Err(reason) => stop_boot(format_args!("{}: {reason}", vm.name)),
        };
        janus_println!(
            "{}: RAM {base:#x}-{:#x} ({} MiB, IPA = PA), VMID {}, vCPUs {} on CPUs {}, {} bytes of kernel at {:#x}, device tree at {:#x}",
            vm.name,
            base + size,
            size >> 20,
            // Widened, here and for the key's line: the same digits, without u16's
            // and u8's own copies of the integer formatting in the image.
            u32::from(vm.vmid),
            pcpus.len(),
            List(&pcpus),
            image.kernel.len(),
            image.kernel_ipa,
            image.dtb_ipa
        );
        vms.push(vm);
        images.push(image);
    }
    let (used, total) = heap::frame_usage();
    let (used, total) = (used - hyp_frames, total - hyp_frames);
    // The rest of the pool is shared out for the tables of RAM mapped with pages.
    let share = (total - used) / images.len().max(1);
    for image in &images {
        image.ram.lock().limit_paged_chunks(share);
    }
    janus_println!(
        "stage-2 tables use {used} of {total} page-table frames; {share} per personality for RAM mapped with 4 KiB pages"
    );
    IMAGES.call_once(|| images);
    let vms = PERSONALITIES.call_once(|| vms);
    ASSIGNMENTS.call_once(|| assignments);

    // SAFETY: the device tree names the GICv3 frames; the boot map has them as
    // Device memory and only this driver uses them.
    unsafe { gic::init(board.gicd as usize, board.gicr as usize, board.cpus.len()) };
    let names: Vec<&str> = vms.iter().map(|vm| vm.name.as_str()).collect();
    crate::console::init_mux(&names);
    // The console is switched for every kind of personality: a background
    // one's output, its hypercall lines included, waits until it comes forward.
    gic::route_spi(run::CONSOLE_UART_SPI, board.cpus[0]);
    arch::uart::enable_input();
    janus_println!(
        "console hotkey: Ctrl-] then Tab (next personality), 1-9, ? (help), s (statistics)"
    );
    if let Some(key) = board.key {
        // SAFETY: the device tree names this PL061 as the key's controller;
        // the boot map has it as Device memory and nothing else uses it.
        unsafe { arch::key::install(key) };
        gic::route_spi(key.spi, board.cpus[0]);
        janus_println!(
            "hardware key (GPIO line {} at {:#x}): next personality",
            u32::from(key.line),
            key.base
        );
    }
    janus_println!("foreground: {}", names.first().copied().unwrap_or("none"));
    percpu::init(0, entry::stacks_base());
    for (index, &mpidr) in board.cpus.iter().enumerate().take(MAX_CPUS).skip(1) {
        let entry_point = entry::secondary_entry as *const () as u64;
        if let Err(error) = firmware::cpu_on(mpidr, entry_point, index as u64) {
            janus_println!("CPU {index} (MPIDR {mpidr:#x}) did not start: {error}");
        }
    }
    // SAFETY: first use of this CPU's slot, before any guest runs.
    run::idle(unsafe { percpu::current() })
}

fn secondary(cpu: usize) -> ! {
    percpu::init(cpu, entry::stacks_base());
    gic::init_cpu(cpu);
    // SAFETY: first use of this CPU's slot, before any guest runs.
    run::idle(unsafe { percpu::current() })
}

fn pa_range_bits() -> u32 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

/// Maps exactly the personality's RAM (IPA = PA), nothing of Janus or anyone else.
fn build_stage2(vm: &Personality) -> GuestRam<heap::GlobalFrames> {
    let ram = Stage2Table::new(heap::GlobalFrames)
        .and_then(|table| GuestRam::new(table, vm.ram_base, vm.ram_size));
    match ram {
        Ok(ram) => {
            ram.table().mark_active();
            ram
        }
        Err(error) => stop_boot(format_args!("{}: stage-2 table: {error}", vm.name)),
    }
}

/// Lays the personality's RAM out: kernel at the bottom (2 MiB + text_offset for
/// a Linux Image), initrd above it, device tree in the top 2 MiB.
fn guest_image(
    vm: &Personality,
    config: &crate::vm::bundle::PersonalityConfig<'static>,
    ram: GuestRam<heap::GlobalFrames>,
    pa_bits: u32,
) -> Result<GuestImage, &'static str> {
    let kernel_ipa = match config.kind {
        GuestKind::BareMetal => vm.ram_base,
        GuestKind::Linux => vm.ram_base + crate::vm::loader::linux_text_offset(config.kernel)?,
    };
    let dtb_ipa = vm.ram_base + vm.ram_size - DTB_AREA_BYTES;
    let kernel_bytes = match config.kind {
        GuestKind::BareMetal => config.kernel.len() as u64,
        GuestKind::Linux => crate::vm::loader::linux_image_size(config.kernel)?,
    };
    let kernel_end = kernel_ipa + kernel_bytes;
    let initrd_ipa = (kernel_end + RAM_ALIGN - 1) & !(RAM_ALIGN - 1);
    if kernel_end > dtb_ipa || initrd_ipa + config.initrd.len() as u64 > dtb_ipa {
        return Err("kernel and initrd do not fit in its RAM");
    }
    let initrd =
        (!config.initrd.is_empty()).then(|| (initrd_ipa, initrd_ipa + config.initrd.len() as u64));
    let tree = GuestTree {
        name: config.name,
        ram: (vm.ram_base, vm.ram_size),
        vcpus: config.vcpus,
        bootargs: config.bootargs,
        initrd,
        devices: config.kind == GuestKind::Linux,
        seeds: None,
        block: vm.block.is_some(),
        shared: vm.shared.is_some(),
    };
    // Every start's tree has seeds of these sizes, so this one's size is theirs.
    let sized = GuestTree {
        seeds: Some(GuestSeeds {
            rng_seed: [0; RNG_SEED_BYTES],
            kaslr_seed: 0,
        }),
        ..tree
    };
    let dtb = devicetree::generate(&sized).map_err(|_| "device tree generation failed")?;
    if dtb.len() as u64 > DTB_AREA_BYTES {
        return Err("device tree larger than 2 MiB");
    }
    Ok(GuestImage {
        kernel: config.kernel,
        initrd: config.initrd,
        tree,
        starts: AtomicU64::new(0),
        kernel_ipa,
        initrd_ipa,
        dtb_ipa,
        root: ram.table().root_pa().0,
        ram: Mutex::new(ram),
        vtcr: stage2::vtcr_el2(pa_bits),
        cntvoff: AtomicU64::new(0),
    })
}

/// The block device of personality `config` on its volume (the disk's
/// partition of its name), saying what it got; `None` when the configuration
/// gives it no volume or the disk has no partition for it.
fn block_device(config: &PersonalityConfig<'_>, ram: (u64, u64)) -> Option<BlockDevice> {
    let wanted = config.volume_mib?;
    let Some(backend) = storage::backend(config.name, ram) else {
        if storage::storage().is_some() {
            janus_println!(
                "{}: the disk has no partition \"{}\" ({wanted} MiB configured); it starts without its volume",
                config.name,
                config.name
            );
        }
        return None;
    };
    let sectors = backend.volume().sectors;
    janus_println!(
        "{}: volume = partition \"{}\" ({} MiB), virtio-blk at {BLOCK_BASE:#x} (SPI {BLOCK_SPI})",
        config.name,
        config.name,
        sectors >> 11
    );
    let mut serial = alloc::vec::Vec::from(&b"janus-"[..]);
    serial.extend_from_slice(config.name.as_bytes());
    let device = BlkDevice::new(alloc::boxed::Box::new(backend), &serial);
    Some(MmioTransport::new(device))
}

/// 32 bytes from the CPU's random number generator (RNDR, FEAT_RNG), or `None`
/// when it has none or it fails.
fn hardware_random() -> Option<[u8; 32]> {
    // ID_AA64ISAR0_EL1.RNDR, bits [63:60]: 0b0001 when RNDR and RNDRRS exist.
    if ID_AA64ISAR0_EL1.get() >> 60 == 0 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        let (value, valid): (u64, u64);
        // SAFETY: RNDR (S3_3_C2_C4_0) only returns a number and sets NZCV
        // (Z when it could not); the CPU implements it, as checked above.
        unsafe {
            asm!(
                "mrs {value}, S3_3_C2_C4_0",
                "cset {valid}, ne",
                value = out(reg) value,
                valid = out(reg) valid,
                options(nomem, nostack),
            )
        };
        if valid == 0 {
            return None;
        }
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    Some(bytes)
}

/// (Re)starts a personality: clears its RAM, loads kernel, initrd and device
/// tree, and starts vCPU 0 at the kernel with x0 = device tree. Runs on the
/// physical CPU of its vCPU 0 when none of its vCPUs is running, so that
/// personalities load in parallel.
pub fn restart(vm: &'static Personality) {
    let image = stage2(vm);
    let start = image.starts.fetch_add(1, Ordering::Relaxed);
    let seeds = ENTROPY
        .get()
        .and_then(Option::as_ref)
        .map(|entropy| entropy.seeds(vm.id as u32, start));
    let Ok(mut dtb) = devicetree::generate(&GuestTree {
        seeds,
        ..image.tree
    }) else {
        // The same tree was generated at boot; only running out of heap gets here.
        janus_println!("{}: no memory for its device tree; it stays off", vm.name);
        vm.set_state(VmState::Off);
        return;
    };
    // Every chunk of its RAM is cleared when first used (`vm/ram.rs`): now those
    // the images go into, the others when the guest touches them.
    let loads = [
        image.kernel_ipa..image.kernel_ipa + image.kernel.len() as u64,
        image.initrd_ipa..image.initrd_ipa + image.initrd.len() as u64,
        image.dtb_ipa..image.dtb_ipa + dtb.len() as u64,
    ];
    let prepared = {
        let mut ram = image.ram.lock();
        ram.forget().and_then(|()| {
            ram.prepare(&loads, |start, len| {
                // SAFETY: `prepare` passes page-aligned parts of this personality's
                // RAM, and none of its vCPUs runs.
                unsafe { memory::scrub_guest(start, len) }
            })
        })
    };
    if let Err(error) = prepared {
        // Only a Janus bug gets here: the RAM was mapped as whole chunks at boot.
        janus_println!("{}: stage-2 table: {error}; it stays off", vm.name);
        vm.set_state(VmState::Off);
        return;
    }
    memory::publish_stage2();
    // SAFETY: the ranges lie in this personality's RAM (checked when its image
    // was laid out) and none of its vCPUs runs.
    unsafe {
        memory::copy_to_guest(image.kernel_ipa, image.kernel);
        memory::copy_to_guest(image.initrd_ipa, image.initrd);
        memory::copy_to_guest(image.dtb_ipa, &dtb);
    }
    // The seeds are the personality's alone: leave no copy in Janus' heap.
    dtb.fill(0);
    core::hint::black_box(&dtb);
    image.cntvoff.store(CNTPCT_EL0.get(), Ordering::Relaxed);
    if let Some(devices) = &vm.devices {
        devices.lock().reset();
    }
    // Its I/O ran on its own vCPUs, synchronously: none is in flight now.
    if let Some(block) = &vm.block {
        block.lock().reset();
    }
    crate::console::restarted(vm.id);
    let first_start = vm.state() == VmState::Starting;
    vm.set_state(VmState::Running);
    if let Some(first) = vm.vcpus.first() {
        let _ = first.request_on(image.kernel_ipa, image.dtb_ipa);
    }
    janus_println!(
        "{}: {}",
        vm.name,
        if first_start { "started" } else { "restarted" }
    );
}

/// Makes the RAM chunk holding `ipa` present after clearing it, when it is one
/// of `vm`'s chunks still absent since its start (`vm/ram.rs`): the answer to a
/// stage-2 translation fault. Returns `false` when `ipa` is not in its RAM (or
/// the chunk could not be made present).
pub fn fill_on_touch(vm: &Personality, ipa: u64) -> bool {
    // Emulated devices fault here too: leave them without taking the lock.
    vm.ram_contains(ipa, 1) && fill_range(vm, ipa, 1)
}

/// Makes every chunk of `[ipa, ipa + len)` in `vm`'s RAM present, clearing the
/// absent ones first, before Janus reads them for the guest. `false` when that
/// failed (a Janus bug): the caller must not read the range then.
pub fn fill_range(vm: &Personality, ipa: u64, len: u64) -> bool {
    let image = stage2(vm);
    let mut ram = image.ram.lock();
    let filled = ram.touch_range(ipa, len, |start, len| {
        // SAFETY: `touch_range` passes absent chunks of this personality's RAM:
        // no vCPU can reach them until they are present, and the lock keeps every
        // other CPU from filling them at the same time.
        unsafe { memory::scrub_guest(start, len) }
    });
    drop(ram);
    match filled {
        Ok(0) => true,
        Ok(_) => {
            memory::publish_stage2();
            true
        }
        Err(error) => {
            janus_println!("{}: stage-2 table: {error}", vm.name);
            false
        }
    }
}
