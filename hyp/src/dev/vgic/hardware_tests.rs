//! Scenario tests: timer PPIs tied to their physical PPIs, listed with HW = 1, their level
//! sampled from the timer, taken back when the timer's output falls before the guest
//! takes them.

use super::lr::{ListRegister, LrState};
use super::{Vgic, REDIST_FRAME_BYTES, REDIST_STRIDE_BYTES};
use crate::dev::Width;

/// The EL1 virtual and physical timer PPIs, tied to the physical PPIs of the same number.
const VTIMER: u32 = 27;
const PTIMER: u32 = 30;
const LR_COUNT: usize = 4;

const GICD_CTLR: u64 = 0x0000;
/// GICD_CTLR.EnableGrp1 (Linux's GICD_CTLR_ENABLE_G1A) and ARE_NS.
const GICD_CTLR_GROUP1_ARE: u64 = (1 << 1) | (1 << 4);
/// SGI_base registers of vCPU 0's redistributor.
const GICR_ISENABLER0: u64 = REDIST_FRAME_BYTES + 0x0100;
const GICR_ICENABLER0: u64 = REDIST_FRAME_BYTES + 0x0180;
const GICR_ISPENDR0: u64 = REDIST_FRAME_BYTES + 0x0200;
const GICR_ISACTIVER0: u64 = REDIST_FRAME_BYTES + 0x0300;
const GICR_ICACTIVER0: u64 = REDIST_FRAME_BYTES + 0x0380;
const GICR_IPRIORITYR: u64 = REDIST_FRAME_BYTES + 0x0400;

/// Two vCPUs with both timer PPIs tied, the distributor on and both PPIs enabled on
/// vCPU 0 at Linux's default priority.
fn timers() -> Vgic {
    let Ok(mut vgic) = Vgic::new(2, 32) else {
        panic!("two vCPUs and 32 SPIs are supported");
    };
    for ppi in [VTIMER, PTIMER] {
        assert_eq!(vgic.tie_to_physical(ppi, ppi), Ok(()));
    }
    write_gicd(&mut vgic, GICD_CTLR, GICD_CTLR_GROUP1_ARE);
    write_gicr(&mut vgic, GICR_ISENABLER0, (1 << VTIMER) | (1 << PTIMER));
    for ppi in [VTIMER, PTIMER] {
        let offset = GICR_IPRIORITYR + u64::from(ppi);
        assert_eq!(vgic.redist_write(offset, Width::Byte, 0xa0), Ok(()));
    }
    vgic.take_kicks();
    vgic
}

fn write_gicd(vgic: &mut Vgic, offset: u64, value: u64) {
    assert_eq!(vgic.dist_write(offset, Width::Word, value), Ok(()));
}

fn write_gicr(vgic: &mut Vgic, offset: u64, value: u64) {
    assert_eq!(vgic.redist_write(offset, Width::Word, value), Ok(()));
}

/// GICR_ISPENDR0 of vCPU 0 as the guest reads it.
fn pending_bits(vgic: &mut Vgic) -> u64 {
    match vgic.redist_read(GICR_ISPENDR0, Width::Word) {
        Ok(value) => value,
        Err(error) => panic!("GICR_ISPENDR0 read failed: {error:?}"),
    }
}

fn listed(lrs: &[u64]) -> Vec<ListRegister> {
    lrs.iter()
        .map(|&value| ListRegister::decode(value))
        .filter(|lr| lr.state != LrState::Invalid)
        .collect()
}

/// What the CPU interface does to the list register holding `intid` when the guest
/// acknowledges (Active) or deactivates (Invalid) it.
fn guest_moves(lrs: &mut [u64], intid: u32, state: LrState) {
    for slot in lrs.iter_mut() {
        let mut lr = ListRegister::decode(*slot);
        if lr.intid == intid && lr.state != LrState::Invalid {
            lr.state = state;
            *slot = lr.encode();
        }
    }
}

/// One exit of vCPU 0 as `arch/aarch64/run.rs` handles it: the timers' outputs sampled,
/// `sync`, `flush`; returns the physical PPIs to deactivate.
fn exit(vgic: &mut Vgic, lrs: &mut [u64], vtimer: bool, ptimer: bool) -> u32 {
    assert_eq!(vgic.set_level(VTIMER, Some(0), vtimer), Ok(()));
    assert_eq!(vgic.set_level(PTIMER, Some(0), ptimer), Ok(()));
    vgic.sync(0, lrs);
    vgic.flush(0, lrs, LR_COUNT);
    vgic.take_deactivations(0)
}

#[test]
fn a_fired_timer_is_listed_with_hw_and_its_pintid_and_no_eoi_maintenance() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(PTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    assert_eq!(exit(&mut vgic, &mut lrs, false, true), 0);
    let lrs = listed(&lrs);
    assert_eq!(lrs.len(), 1);
    assert_eq!(lrs[0].intid, PTIMER);
    assert_eq!(lrs[0].physical, Some(PTIMER));
    assert_eq!(lrs[0].state, LrState::Pending);
    assert!(!lrs[0].eoi_maintenance);
}

#[test]
fn the_guest_deactivation_ends_the_physical_interrupt_without_janus() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    exit(&mut vgic, &mut lrs, true, false);
    // Acknowledged; the handler reprograms the timer (its output falls); an exit comes
    // before the guest deactivates: the list register keeps it active, HW still set.
    guest_moves(&mut lrs, VTIMER, LrState::Active);
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
    assert_eq!(listed(&lrs).len(), 1);
    assert_eq!(listed(&lrs)[0].state, LrState::Active);
    assert_eq!(listed(&lrs)[0].physical, Some(VTIMER));
    // Deactivated by the guest (and so in hardware): nothing left for Janus to do.
    guest_moves(&mut lrs, VTIMER, LrState::Invalid);
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
    assert!(listed(&lrs).is_empty());
    assert_eq!(vgic.in_service(VTIMER, Some(0)), Ok(false));
}

#[test]
fn a_pending_timer_whose_output_fell_is_retracted_and_its_physical_deactivated() {
    for ppi in [VTIMER, PTIMER] {
        let mut vgic = timers();
        assert_eq!(vgic.take_physical(ppi, 0), Ok(()));
        let mut lrs = [0; LR_COUNT];
        let high = (ppi == VTIMER, ppi == PTIMER);
        exit(&mut vgic, &mut lrs, high.0, high.1);
        // The guest, interrupts masked, sees it pending...
        assert_eq!(pending_bits(&mut vgic), 1 << ppi);
        // ...then disables, masks or reprograms the timer, and reads again: the read
        // samples the timer first (as run.rs does) and shows it no longer pending.
        assert_eq!(vgic.set_level(ppi, Some(0), false), Ok(()));
        assert_eq!(pending_bits(&mut vgic), 0);
        // The exit's flush takes it back and hands the physical PPI back to Janus.
        assert_eq!(exit(&mut vgic, &mut lrs, false, false), 1 << ppi);
        assert!(listed(&lrs).is_empty());
        assert_eq!(vgic.take_deactivations(0), 0);
        assert!(!vgic.has_deliverable(0));
    }
}

#[test]
fn the_pending_state_read_follows_the_sampled_timer_output() {
    let mut vgic = timers();
    // Asserted before the physical interrupt has reached Janus: pending already.
    assert_eq!(vgic.set_level(PTIMER, Some(0), true), Ok(()));
    assert_eq!(pending_bits(&mut vgic), 1 << PTIMER);
    assert_eq!(vgic.set_level(PTIMER, Some(0), false), Ok(()));
    assert_eq!(pending_bits(&mut vgic), 0);
    // Janus never held it, so there is nothing to deactivate.
    let mut lrs = [0; LR_COUNT];
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
}

#[test]
fn a_timer_still_asserted_after_deactivation_is_delivered_again() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    exit(&mut vgic, &mut lrs, true, false);
    guest_moves(&mut lrs, VTIMER, LrState::Active);
    guest_moves(&mut lrs, VTIMER, LrState::Invalid);
    // The physical interrupt fires again at once; Janus takes it.
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    assert_eq!(exit(&mut vgic, &mut lrs, true, false), 0);
    assert_eq!(listed(&lrs).len(), 1);
    assert_eq!(listed(&lrs)[0].state, LrState::Pending);
    assert_eq!(listed(&lrs)[0].physical, Some(VTIMER));
}

#[test]
fn a_disabled_timer_ppi_keeps_its_physical_active_until_the_output_falls() {
    let mut vgic = timers();
    write_gicr(&mut vgic, GICR_ICENABLER0, 1 << PTIMER);
    assert_eq!(vgic.take_physical(PTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    // Not deliverable: not listed, but held (deactivating would only make it fire again).
    assert_eq!(exit(&mut vgic, &mut lrs, false, true), 0);
    assert!(listed(&lrs).is_empty());
    assert_eq!(pending_bits(&mut vgic), 1 << PTIMER);
    // Enabled again while still asserted: delivered.
    write_gicr(&mut vgic, GICR_ISENABLER0, 1 << PTIMER);
    assert_eq!(exit(&mut vgic, &mut lrs, false, true), 0);
    assert_eq!(listed(&lrs).len(), 1);
    // Disabled while listed and not taken: taken back, still held while asserted...
    write_gicr(&mut vgic, GICR_ICENABLER0, 1 << PTIMER);
    assert_eq!(exit(&mut vgic, &mut lrs, false, true), 0);
    assert!(listed(&lrs).is_empty());
    // ...and deactivated once the timer no longer asserts it.
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 1 << PTIMER);
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
}

#[test]
fn a_timer_active_in_the_model_is_never_listed_pending_and_active() {
    let mut vgic = timers();
    write_gicr(&mut vgic, GICR_ISACTIVER0, 1 << VTIMER);
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    exit(&mut vgic, &mut lrs, true, false);
    assert_eq!(listed(&lrs).len(), 1);
    assert_eq!(listed(&lrs)[0].state, LrState::Active);
    // A software pend while listed active does not join it either.
    write_gicr(&mut vgic, GICR_ISPENDR0, 1 << VTIMER);
    exit(&mut vgic, &mut lrs, true, false);
    assert_eq!(listed(&lrs)[0].state, LrState::Active);
    // Once the guest deactivates it, the pend is delivered.
    guest_moves(&mut lrs, VTIMER, LrState::Invalid);
    exit(&mut vgic, &mut lrs, true, false);
    assert_eq!(listed(&lrs).len(), 1);
    assert_eq!(listed(&lrs)[0].state, LrState::Pending);
}

#[test]
fn reset_keeps_the_tie_and_frees_the_hw_list_registers() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    exit(&mut vgic, &mut lrs, true, false);
    vgic.reset();
    // The caller deactivates the physical PPIs itself on reset; the model owes none.
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
    assert!(listed(&lrs).is_empty());
    write_gicd(&mut vgic, GICD_CTLR, GICD_CTLR_GROUP1_ARE);
    write_gicr(&mut vgic, GICR_ISENABLER0, 1 << VTIMER);
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    exit(&mut vgic, &mut lrs, true, false);
    assert_eq!(listed(&lrs)[0].physical, Some(VTIMER));
}

#[test]
fn a_hw_list_register_the_model_did_not_write_is_freed() {
    let mut vgic = timers();
    let foreign = ListRegister {
        intid: VTIMER,
        priority: 0xa0,
        group1: true,
        eoi_maintenance: false,
        physical: Some(PTIMER),
        state: LrState::Pending,
    };
    let mut lrs = [foreign.encode(), 0, 0, 0];
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 0);
    assert!(lrs.iter().all(|&lr| lr == 0));
}

#[test]
fn the_other_vcpus_timers_are_its_own() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(VTIMER, 1), Ok(()));
    assert_eq!(vgic.set_level(VTIMER, Some(1), false), Ok(()));
    let mut lrs = [0; LR_COUNT];
    vgic.sync(1, &mut lrs);
    vgic.flush(1, &mut lrs, LR_COUNT);
    // vCPU 1 never enabled the PPI; its hold ends on its own CPU, not vCPU 0's.
    assert_eq!(vgic.take_deactivations(0), 0);
    assert_eq!(vgic.take_deactivations(1), 1 << VTIMER);
    let second = REDIST_STRIDE_BYTES + GICR_ISPENDR0;
    assert_eq!(vgic.redist_read(second, Width::Word), Ok(0));
}

#[test]
fn clearing_the_active_state_of_a_taken_timer_hands_its_physical_back() {
    let mut vgic = timers();
    assert_eq!(vgic.take_physical(VTIMER, 0), Ok(()));
    let mut lrs = [0; LR_COUNT];
    exit(&mut vgic, &mut lrs, true, false);
    guest_moves(&mut lrs, VTIMER, LrState::Active);
    // GICR_ICACTIVER0 instead of a deactivation through the CPU interface: the list
    // register goes, so Janus must end the physical interrupt once the output fell.
    write_gicr(&mut vgic, GICR_ICACTIVER0, 1 << VTIMER);
    assert_eq!(exit(&mut vgic, &mut lrs, false, false), 1 << VTIMER);
    assert!(listed(&lrs).is_empty());
}
