; smartvm-guest: a tiny x86_64 guest "kernel" for Firecracker (see README.md).
;
; Assembled with `nasm -f bin`: the output is a complete ELF64 executable with one
; PT_LOAD segment at 1 MiB, which Firecracker loads as a vmlinux and enters at
; e_entry in 64-bit long mode (paging on, first GiB identity-mapped, rsi = the
; Linux boot parameters "zero page").
;
; Behaviour:
;   - prints "smartvm-guest: ready\n" on the 16550 serial port at 0x3f8;
;   - echoes every byte that arrives on the serial input;
;   - resets through the i8042 controller (out 0x64, 0xFE; Firecracker then exits 0)
;     on Ctrl-Alt-Del (any scancode read from port 0x60) or on a `q` on serial;
;   - between polls it sleeps in `hlt`, woken by the serial and keyboard interrupts
;     (8259 PIC) and by a slow PIT tick, so an idle guest costs the VMM ~nothing.
; Command-line words (whitespace separated, anywhere on the kernel command line):
;   svmguest.exit   reset right after printing the line (start-latency benchmarks)
;   svmguest.nocad  ignore Ctrl-Alt-Del (scancodes are read and dropped)
;   svmguest.poll   do not use interrupts: busy-poll with a `pause` loop instead

BITS 64
DEFAULT ABS

LOAD_ADDR   equ 0x100000

COM1        equ 0x3f8
COM1_IER    equ COM1 + 1
COM1_FCR    equ COM1 + 2
COM1_LCR    equ COM1 + 3
COM1_MCR    equ COM1 + 4
COM1_LSR    equ COM1 + 5
KBD_DATA    equ 0x60
KBD_STATUS  equ 0x64
PIC1_CMD    equ 0x20
PIC1_DATA   equ 0x21
PIC2_CMD    equ 0xa0
PIC2_DATA   equ 0xa1
PIT_CH0     equ 0x40
PIT_CMD     equ 0x43

IRQ_BASE    equ 0x20            ; PIC vectors 0x20..0x2f
PIT_DIVISOR equ 59659           ; 1193182 Hz / 59659 = ~20 Hz safety tick
PAUSES      equ 1000            ; pause instructions between polls in poll mode

ZP_CMDLINE_PTR equ 0x228        ; boot_params.hdr.cmd_line_ptr (u32)

            ORG LOAD_ADDR

; ---------------------------------------------------------------- ELF header
ehdr:
            db 0x7f, 'E', 'L', 'F'
            db 2                ; ELFCLASS64
            db 1                ; ELFDATA2LSB
            db 1                ; EV_CURRENT
            db 0                ; ELFOSABI_NONE
            times 8 db 0
            dw 2                ; e_type: ET_EXEC
            dw 0x3e             ; e_machine: EM_X86_64
            dd 1                ; e_version
            dq _start           ; e_entry
            dq phdr - ehdr      ; e_phoff
            dq 0                ; e_shoff
            dd 0                ; e_flags
            dw ehdr_end - ehdr  ; e_ehsize
            dw phdr_end - phdr  ; e_phentsize
            dw 1                ; e_phnum
            dw 64               ; e_shentsize
            dw 0                ; e_shnum
            dw 0                ; e_shstrndx
ehdr_end:

phdr:
            dd 1                ; p_type: PT_LOAD
            dd 7                ; p_flags: RWX
            dq 0                ; p_offset
            dq LOAD_ADDR        ; p_vaddr
            dq LOAD_ADDR        ; p_paddr
            dq file_end - ehdr  ; p_filesz
            dq mem_end - ehdr   ; p_memsz
            dq 0x1000           ; p_align
phdr_end:

; ---------------------------------------------------------------- code
_start:
            cli
            cld
            mov rsp, stack_top
            mov [zero_page], rsi

            call parse_cmdline
            call serial_init

            lea rsi, [rel msg_ready]
            call puts

            test byte [opt_exit], 1
            jnz reset

            test byte [opt_poll], 1
            jnz poll_loop

            call irq_init

; Interrupt-driven loop: check both devices, then sleep until an interrupt.
; `sti; hlt` is atomic with respect to interrupts (sti shadow), so an interrupt
; arriving after the checks still wakes the hlt.
irq_loop:
            cli
            call service
            test eax, eax
            jnz irq_loop        ; did something: look again before sleeping
            sti
            hlt
            jmp irq_loop

; Polling loop: check both devices, then a pause delay.
poll_loop:
            call service
            test eax, eax
            jnz poll_loop
            mov ecx, PAUSES
.delay:     pause
            dec ecx
            jnz .delay
            jmp poll_loop

; service: handle at most one serial byte and one keyboard byte.
; Returns eax != 0 when something was handled.
service:
            xor r8d, r8d
            mov dx, COM1_LSR
            in al, dx
            test al, 1          ; LSR.DR: data ready
            jz .kbd
            mov dx, COM1
            in al, dx
            cmp al, 'q'
            je reset
            call putc
            inc r8d
.kbd:
            in al, KBD_STATUS
            test al, 1          ; output buffer full
            jz .done
            in al, KBD_DATA
            inc r8d
            test byte [opt_nocad], 1
            jz reset            ; any scancode: Ctrl-Alt-Del
.done:
            mov eax, r8d
            ret

reset:
            cli
.wait:      in al, KBD_STATUS   ; wait for the input buffer to be empty
            test al, 2
            jnz .wait
            mov al, 0xfe
            out KBD_STATUS, al
.hang:      hlt
            jmp .hang

; ---------------------------------------------------------------- serial
serial_init:
            mov dx, COM1_IER
            xor al, al
            out dx, al          ; interrupts off while configuring
            mov dx, COM1_LCR
            mov al, 0x03        ; 8N1, DLAB off
            out dx, al
            mov dx, COM1_MCR
            mov al, 0x0b        ; DTR | RTS | OUT2 (OUT2 gates the IRQ line)
            out dx, al
            ret

; putc: al = byte
putc:
            push rdx
            push rax
            mov dx, COM1_LSR
.wait:      in al, dx
            test al, 0x20       ; THR empty
            jz .wait
            pop rax
            mov dx, COM1
            out dx, al
            pop rdx
            ret

; puts: rsi = NUL-terminated string
puts:
.next:      lodsb
            test al, al
            jz .end
            call putc
            jmp .next
.end:       ret

; ---------------------------------------------------------------- interrupts
irq_init:
            ; IDT: every vector points at the same stub (it only has to wake hlt).
            lea rdi, [rel idt]
            mov rax, irq_stub
            mov ecx, 256
.fill:      mov word [rdi], ax          ; offset 15:0
            mov word [rdi + 2], 0x10    ; Firecracker's 64-bit code selector
            mov byte [rdi + 4], 0       ; IST
            mov byte [rdi + 5], 0x8e    ; present, DPL0, interrupt gate
            mov rdx, rax
            shr rdx, 16
            mov word [rdi + 6], dx      ; offset 31:16
            shr rdx, 16
            mov dword [rdi + 8], edx    ; offset 63:32
            mov dword [rdi + 12], 0
            add rdi, 16
            dec ecx
            jnz .fill
            ; use the current CS, whatever Firecracker chose
            mov ax, cs
            lea rdi, [rel idt]
            mov ecx, 256
.cs:        mov [rdi + 2], ax
            add rdi, 16
            dec ecx
            jnz .cs
            lidt [idt_desc]

            ; 8259 PICs: ICW1..ICW4, vectors 0x20 / 0x28, cascade on IRQ2.
            mov al, 0x11
            out PIC1_CMD, al
            out PIC2_CMD, al
            mov al, IRQ_BASE
            out PIC1_DATA, al
            mov al, IRQ_BASE + 8
            out PIC2_DATA, al
            mov al, 4
            out PIC1_DATA, al
            mov al, 2
            out PIC2_DATA, al
            mov al, 1
            out PIC1_DATA, al
            out PIC2_DATA, al
            ; unmask IRQ0 (PIT), IRQ1 (keyboard), IRQ4 (COM1)
            mov al, ~((1 << 0) | (1 << 1) | (1 << 4)) & 0xff
            out PIC1_DATA, al
            mov al, 0xff
            out PIC2_DATA, al

            ; PIT channel 0, mode 2 (rate generator): a slow safety tick, so a
            ; lost interrupt can never leave the guest asleep for good.
            mov al, 0x34
            out PIT_CMD, al
            mov al, PIT_DIVISOR & 0xff
            out PIT_CH0, al
            mov al, PIT_DIVISOR >> 8
            out PIT_CH0, al

            ; COM1: interrupt on received data
            mov dx, COM1_IER
            mov al, 0x01
            out dx, al
            ret

irq_stub:
            push rax
            mov al, 0x20        ; non-specific EOI to both PICs
            out PIC2_CMD, al
            out PIC1_CMD, al
            pop rax
            iretq

; ---------------------------------------------------------------- command line
; Sets opt_exit / opt_nocad / opt_poll from whole words of the command line.
parse_cmdline:
            mov rsi, [zero_page]
            test rsi, rsi
            jz .ret
            mov esi, [rsi + ZP_CMDLINE_PTR]
            test esi, esi
            jz .ret
.word:      ; skip separators
            mov al, [rsi]
            test al, al
            jz .ret
            cmp al, ' '
            ja .start
            inc rsi
            jmp .word
.start:     lea rdi, [rel w_exit]
            lea rbx, [rel opt_exit]
            call match
            lea rdi, [rel w_nocad]
            lea rbx, [rel opt_nocad]
            call match
            lea rdi, [rel w_poll]
            lea rbx, [rel opt_poll]
            call match
.skip:      ; skip to the end of the word
            mov al, [rsi]
            test al, al
            jz .ret
            cmp al, ' '
            jbe .word
            inc rsi
            jmp .skip
.ret:       ret

; match: rsi = word start, rdi = NUL-terminated keyword, rbx = flag byte to set
; when the word equals the keyword. Preserves rsi.
match:
            push rsi
.cmp:       mov al, [rdi]
            test al, al
            jz .end
            cmp al, [rsi]
            jne .no
            inc rsi
            inc rdi
            jmp .cmp
.end:       mov al, [rsi]       ; the word must end here
            cmp al, ' '
            ja .no
            mov byte [rbx], 1
.no:        pop rsi
            ret

; ---------------------------------------------------------------- data
msg_ready:  db "smartvm-guest: ready", 10, 0
w_exit:     db "svmguest.exit", 0
w_nocad:    db "svmguest.nocad", 0
w_poll:     db "svmguest.poll", 0

            align 16
idt_desc:   dw 256 * 16 - 1
            dq idt

            align 16, db 0
file_end:

; ---------------------------------------------------------------- bss
            ABSOLUTE file_end
zero_page:  resq 1
opt_exit:   resb 1
opt_nocad:  resb 1
opt_poll:   resb 1
            resb 5
idt:        resb 256 * 16
stack:      resb 4096
stack_top:
mem_end:
