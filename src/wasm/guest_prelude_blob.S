/* Embeds guest_prelude.h in the host binary, so codegen.c can write it into every guest
 * shim without the header having to exist on the machine at run time. */
  .section .rodata
  .global sl__guest_prelude_text
  .global sl__guest_prelude_end
sl__guest_prelude_text:
  .incbin "src/wasm/guest_prelude.h"
sl__guest_prelude_end:
  .byte 0
  .section .note.GNU-stack,"",@progbits
