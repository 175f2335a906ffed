;; Spins forever without a host call.
;; expect: E4002 wall-time-limit
(module
  (func (export "_start")
    (loop $spin (br $spin))))
