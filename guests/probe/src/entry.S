/*
 * Probe guest entry. vCPU 0 starts at _start with x0 = its device tree; other
 * vCPUs start at secondary_start (through PSCI CPU_ON) with x0 = their index.
 * The MMU stays off: the target is built with +strict-align, so no access is
 * unaligned, which Device memory (all of it, with the MMU off) would fault.
 */
.section .text.entry, "ax"
.global _start
_start:
    mov     x20, x0
    adr     x19, _start                 /* load address (linked at 0) */
    /* Zero .bss. */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  /* Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend. */
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
3:  cmp     x1, x2
    b.hs    4f
    ldp     x3, x4, [x1], #16
    ldr     x5, [x1], #8
    cmp     x4, #1027
    b.ne    3b
    add     x5, x5, x19
    str     x5, [x19, x3]
    b       3b
4:  mov     x0, #0
    b       common

.global secondary_start
secondary_start:
    /* x0 = vCPU index (the CPU_ON context id). */
    mov     x20, #0

common:
    /* Stack: slot x0 of STACKS. */
    mov     x21, x0
    adrp    x1, {STACKS}
    add     x1, x1, :lo12:{STACKS}
    add     x2, x0, #1
    mov     x3, #{STACK_SIZE}
    madd    x1, x2, x3, x1
    mov     sp, x1
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    /* FP/SIMD on (CPACR_EL1.FPEN = 0b11): Rust code may use it. */
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    mov     x0, x21
    mov     x1, x20
    bl      {RUST_START}
5:  wfi
    b       5b

/*
 * EL1 vectors. A synchronous exception (the abort or undefined instruction
 * Janus injects) is recorded in the vCPU's FaultRecord (TPIDR_EL1) and the
 * faulting instruction is skipped.
 */
.balign 0x800
vectors:
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80            /* current EL, SP_ELx, synchronous */
    b       record_fault
    .balign 0x80            /* current EL, SP_ELx, IRQ (the timer checks) */
    b       irq_entry
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected
    .balign 0x80
    b       unexpected

record_fault:
    stp     x0, x1, [sp, #-16]!
    mrs     x1, tpidr_el1
    mrs     x0, esr_el1
    str     x0, [x1, #0]
    mrs     x0, far_el1
    str     x0, [x1, #8]
    ldr     x0, [x1, #16]
    add     x0, x0, #1
    str     x0, [x1, #16]
    /* An instruction abort (EC 0x21) came from a call into memory that may not
     * be executed: return to the caller (x30). Anything else: skip the
     * faulting instruction. */
    mrs     x0, esr_el1
    lsr     x0, x0, #26
    cmp     x0, #0x21
    b.eq    7f
    mrs     x0, elr_el1
    add     x0, x0, #4
    msr     elr_el1, x0
    ldp     x0, x1, [sp], #16
    eret
7:  msr     elr_el1, x30
    ldp     x0, x1, [sp], #16
    eret

/*
 * An IRQ: the caller-saved registers, FP/SIMD included (the Rust handler may use
 * them), around the handler; ELR_EL1 and SPSR_EL1 stay as they are, since the
 * handler runs with interrupts masked.
 */
irq_entry:
    sub     sp, sp, #(24 * 8 + 32 * 16)
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, fpcr
    mrs     x1, fpsr
    stp     x30, x0, [sp, #160]
    str     x1, [sp, #176]
    add     x0, sp, #192
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    bl      {IRQ}
    add     x0, sp, #192
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldp     x30, x0, [sp, #160]
    ldr     x1, [sp, #176]
    msr     fpcr, x0
    msr     fpsr, x1
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    add     sp, sp, #(24 * 8 + 32 * 16)
    eret

unexpected:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    bl      {UNEXPECTED}
6:  wfi
    b       6b
