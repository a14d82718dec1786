/*
 * EL2 exception vectors and the guest entry/exit path.
 *
 * TPIDR_EL2 holds the address of this CPU's GuestRegs (the first field of its
 * PerCpu). An exit from a guest saves x0-x30, ELR_EL2 and SPSR_EL2 there and
 * calls handle_exit on the CPU's own stack, whose top SP_EL2 is reset to before
 * every guest entry. Offsets come from Rust (offset_of!).
 */
.macro HYP_FAULT kind
    .balign 0x80
    mov     x0, #\kind
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    b       {HYP_EXCEPTION}
.endm

.macro GUEST_EXIT kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    stp     x2, x3, [x0, #(2 * 8)]
    stp     x4, x5, [x0, #(4 * 8)]
    stp     x6, x7, [x0, #(6 * 8)]
    stp     x8, x9, [x0, #(8 * 8)]
    stp     x10, x11, [x0, #(10 * 8)]
    stp     x12, x13, [x0, #(12 * 8)]
    stp     x14, x15, [x0, #(14 * 8)]
    stp     x16, x17, [x0, #(16 * 8)]
    stp     x18, x19, [x0, #(18 * 8)]
    stp     x20, x21, [x0, #(20 * 8)]
    stp     x22, x23, [x0, #(22 * 8)]
    stp     x24, x25, [x0, #(24 * 8)]
    stp     x26, x27, [x0, #(26 * 8)]
    stp     x28, x29, [x0, #(28 * 8)]
    str     x30, [x0, #(30 * 8)]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #{REGS_PC}]
    mov     x1, #\kind
    bl      {HANDLE_EXIT}
    mrs     x0, tpidr_el2
    b       guest_restore
.endm

.section .text.vectors, "ax"
.balign 0x800
.global janus_vectors
janus_vectors:
    /* Current EL with SP_EL0: Janus never runs on SP_EL0. */
    HYP_FAULT 0
    HYP_FAULT 1
    HYP_FAULT 2
    HYP_FAULT 3
    /* Current EL with SP_EL2: a fault in Janus itself. */
    HYP_FAULT 4
    HYP_FAULT 5
    HYP_FAULT 6
    HYP_FAULT 7
    /* Lower EL, AArch64: a guest exit. */
    GUEST_EXIT {EXIT_SYNC}
    GUEST_EXIT {EXIT_IRQ}
    GUEST_EXIT {EXIT_FIQ}
    GUEST_EXIT {EXIT_SERROR}
    /* Lower EL, AArch32: guests are AArch64 only (HCR_EL2.RW); handled as unknown. */
    GUEST_EXIT {EXIT_AARCH32}
    GUEST_EXIT {EXIT_IRQ}
    GUEST_EXIT {EXIT_FIQ}
    GUEST_EXIT {EXIT_SERROR}

/* x0 = address of the GuestRegs to load. */
guest_restore:
    ldp     x2, x3, [x0, #{REGS_PC}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #(2 * 8)]
    ldp     x4, x5, [x0, #(4 * 8)]
    ldp     x6, x7, [x0, #(6 * 8)]
    ldp     x8, x9, [x0, #(8 * 8)]
    ldp     x10, x11, [x0, #(10 * 8)]
    ldp     x12, x13, [x0, #(12 * 8)]
    ldp     x14, x15, [x0, #(14 * 8)]
    ldp     x16, x17, [x0, #(16 * 8)]
    ldp     x18, x19, [x0, #(18 * 8)]
    ldp     x20, x21, [x0, #(20 * 8)]
    ldp     x22, x23, [x0, #(22 * 8)]
    ldp     x24, x25, [x0, #(24 * 8)]
    ldp     x26, x27, [x0, #(26 * 8)]
    ldp     x28, x29, [x0, #(28 * 8)]
    ldr     x30, [x0, #(30 * 8)]
    ldp     x0, x1, [x0]
    eret
    /* No straight-line speculation past the eret. */
    dsb     nsh
    isb

/* enter_guest(regs = x0, stack_top = x1): drops the Rust frames below and runs the guest. */
.global janus_enter_guest
janus_enter_guest:
    mov     sp, x1
    b       guest_restore
