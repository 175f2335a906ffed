;; One function declaring 2 x 268,435,455 i32 locals in twelve bytes: wazero's
;; decoder would make room for all of them (512 MiB) before compiling. Written
;; as a binary, since the text format names each local. Refused, E1028.
;; expect: E1028 module-too-complex
(module binary
  "\00asm" "\01\00\00\00"
  "\01\04\01\60\00\00"                ;; type section: one type, () -> ()
  "\03\02\01\00"                      ;; function section: one function of type 0
  "\07\0a\01\06_start\00\00"          ;; export section: _start is function 0
  "\0a\0e\01\0c"                      ;; code section: one body of 12 bytes
  "\02\ff\ff\ff\7f\7f\ff\ff\ff\7f\7f" ;; two declarations of 0x0fffffff i32 locals
  "\0b"                               ;; end
)
