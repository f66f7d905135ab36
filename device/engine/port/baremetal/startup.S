/* Reset for a bare-metal Cortex-M (ARMv6-M code, so it also runs on v7-M/v8-M).
 *
 * Vector table: initial SP, reset handler, and a handler for the other exceptions. Reset
 * sets SP (debuggers and emulators may enter here directly), copies .data from flash,
 * zeroes .bss, calls main, then stops at `bkpt #0` (mcu_harness_exit). A fault stops at
 * `bkpt #1` (mcu_harness_fault). */
    .syntax unified
    .thumb

    .section .vectors, "a"
    .align 2
    .globl __vectors
__vectors:
    .word __stack_top
    .word Reset_Handler
    .word Fault_Handler  /* NMI */
    .word Fault_Handler  /* HardFault */
    .rept 12             /* MemManage .. SysTick (reserved on ARMv6-M) */
    .word Fault_Handler
    .endr

    .text
    .align 1
    .globl Reset_Handler
    .type Reset_Handler, %function
    .thumb_func
Reset_Handler:
    ldr r0, =__stack_top
    mov sp, r0
    ldr r0, =__data_load
    ldr r1, =__data_start
    ldr r2, =__data_end
1:  cmp r1, r2
    bhs 2f
    ldm r0!, {r3}
    stm r1!, {r3}
    b 1b
2:  ldr r1, =__bss_start
    ldr r2, =__bss_end
    movs r3, #0
3:  cmp r1, r2
    bhs 4f
    stm r1!, {r3}
    b 3b
4:  bl main
    .globl mcu_harness_exit
    .type mcu_harness_exit, %function
mcu_harness_exit:
    bkpt #0
    b mcu_harness_exit
    .size Reset_Handler, . - Reset_Handler

    .globl Fault_Handler
    .type Fault_Handler, %function
    .thumb_func
Fault_Handler:
    .globl mcu_harness_fault
mcu_harness_fault:
    bkpt #1
    b mcu_harness_fault
    .size Fault_Handler, . - Fault_Handler

    .pool
