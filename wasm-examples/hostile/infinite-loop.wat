;; Spins forever without a host call.
(module
  (func (export "_start")
    (loop $spin (br $spin))))
