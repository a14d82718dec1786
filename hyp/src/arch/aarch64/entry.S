/*
 * Janus' entry: the arm64 Image header, then the code every physical CPU runs
 * from reset to Rust. Constants come from Rust (see entry.rs).
 */
.section .text.head, "ax"
.global _start
_start:
    /* Linux arm64 Image header (Documentation/arch/arm64/booting.rst). */
    b       primary_entry           /* code0 */
    .word   0                       /* code1 */
    .quad   0                       /* text_offset */
    .quad   __image_size            /* image_size: what the loader must leave free */
    .quad   {IMAGE_FLAGS}           /* flags: little endian, 4 KiB pages, anywhere */
    .quad   0                       /* res2 */
    .quad   0                       /* res3 */
    .quad   0                       /* res4 */
    .ascii  "ARM\x64"               /* magic */
    .word   0                       /* res5: no PE/COFF header */

/* The boot CPU: x0 = physical address of the device tree. */
primary_entry:
    mov     x19, x0
    mrs     x1, CurrentEL
    cmp     x1, #{CURRENT_EL_EL2}
    b.ne    park
    /* Janus is linked at HYP_BASE and not relocatable: refuse any other place. */
    adr     x1, _start
    ldr     x2, ={HYP_BASE}
    cmp     x1, x2
    b.ne    park
    /*
     * Zero .bss (it holds the stacks, the heap, the frame pool and the boot
     * identity map) with the MMU off: the stores go to memory. A loader cleans
     * only the image it loaded, so .bss may have stale lines in the caches,
     * which Rust and the table walker read through once the MMU is on. Drop
     * them before the stores (so none can be written back over them) and
     * after (so none shadows them).
     */
    bl      invalidate_bss
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
    /* The boot identity map (mmu.rs): four 1 GiB blocks at the table's start. */
2:  adrp    x1, {BOOT_TABLE}
    add     x1, x1, :lo12:{BOOT_TABLE}
    ldr     x2, ={BLOCK0}
    ldr     x3, ={BLOCK1}
    stp     x2, x3, [x1]
    ldr     x2, ={BLOCK2}
    ldr     x3, ={BLOCK3}
    stp     x2, x3, [x1, #16]
    /* Device-memory stores before maintenance by address: order them. */
    dmb     sy
    bl      invalidate_bss
    mov     x0, #0
    mov     x1, x19
    b       common_entry

/*
 * DC IVAC over all of .bss (page aligned), stepping by the smallest data cache
 * line (CTR_EL0.DminLine, log2 of words), then DSB. Clobbers x1-x4.
 */
invalidate_bss:
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4
    mov     x4, #4
    lsl     x4, x4, x3
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  dc      ivac, x1
    add     x1, x1, x4
    cmp     x1, x2
    b.lo    1b
    dsb     sy
    ret

/* Secondary CPUs, started by the firmware's PSCI CPU_ON: x0 = our CPU index. */
.global secondary_entry
secondary_entry:
    mov     x1, #0

/* x0 = CPU index, x1 = device tree (boot CPU) or 0. */
common_entry:
    /* Stack: the index-th slot of STACKS, growing down from its end. */
    ldr     x2, ={STACK_SIZE}
    add     x3, x0, #1
    mul     x3, x3, x2
    adrp    x4, {STACKS}
    add     x4, x4, :lo12:{STACKS}
    add     sp, x4, x3

    adrp    x2, janus_vectors
    add     x2, x2, :lo12:janus_vectors
    msr     vbar_el2, x2

    /* EL2 stage 1: identity map from the boot table, then MMU and caches on. */
    ldr     x2, ={MAIR}
    msr     mair_el2, x2
    ldr     x2, ={TCR}
    msr     tcr_el2, x2
    adrp    x2, {BOOT_TABLE}
    add     x2, x2, :lo12:{BOOT_TABLE}
    msr     ttbr0_el2, x2
    isb
    tlbi    alle2
    dsb     sy
    isb
    ldr     x2, ={SCTLR}
    msr     sctlr_el2, x2
    isb

    bl      {RUST_ENTRY}
park:
    wfe
    b       park
