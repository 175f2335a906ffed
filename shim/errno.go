package shim

import "fmt"

// Errno is a WASI preview 1 error number, what every WASI function returns.
// The constants below are the whole numbering, in the standard's order, and
// errnoNames names each: this is the one table of WASI errnos the runtime
// uses, for the gate's Deny rules and for the names a trace prints.
type Errno uint16

// The WASI preview 1 errnos, numbered as the standard numbers them (POSIX
// names; ENOTCAPABLE, the last, is WASI's own).
const (
	ESUCCESS        Errno = iota // No error occurred.
	E2BIG                        // Argument list too long.
	EACCES                       // Permission denied.
	EADDRINUSE                   // Address in use.
	EADDRNOTAVAIL                // Address not available.
	EAFNOSUPPORT                 // Address family not supported.
	EAGAIN                       // Resource unavailable, or operation would block.
	EALREADY                     // Connection already in progress.
	EBADF                        // Bad file descriptor.
	EBADMSG                      // Bad message.
	EBUSY                        // Device or resource busy.
	ECANCELED                    // Operation canceled.
	ECHILD                       // No child processes.
	ECONNABORTED                 // Connection aborted.
	ECONNREFUSED                 // Connection refused.
	ECONNRESET                   // Connection reset.
	EDEADLK                      // Resource deadlock would occur.
	EDESTADDRREQ                 // Destination address required.
	EDOM                         // Mathematics argument out of domain of function.
	EDQUOT                       // Reserved.
	EEXIST                       // File exists.
	EFAULT                       // Bad address.
	EFBIG                        // File too large.
	EHOSTUNREACH                 // Host is unreachable.
	EIDRM                        // Identifier removed.
	EILSEQ                       // Illegal byte sequence.
	EINPROGRESS                  // Operation in progress.
	EINTR                        // Interrupted function.
	EINVAL                       // Invalid argument.
	EIO                          // I/O error.
	EISCONN                      // Socket is connected.
	EISDIR                       // Is a directory.
	ELOOP                        // Too many levels of symbolic links.
	EMFILE                       // File descriptor value too large.
	EMLINK                       // Too many links.
	EMSGSIZE                     // Message too large.
	EMULTIHOP                    // Reserved.
	ENAMETOOLONG                 // Filename too long.
	ENETDOWN                     // Network is down.
	ENETRESET                    // Connection aborted by network.
	ENETUNREACH                  // Network unreachable.
	ENFILE                       // Too many files open in system.
	ENOBUFS                      // No buffer space available.
	ENODEV                       // No such device.
	ENOENT                       // No such file or directory.
	ENOEXEC                      // Executable file format error.
	ENOLCK                       // No locks available.
	ENOLINK                      // Reserved.
	ENOMEM                       // Not enough space.
	ENOMSG                       // No message of the desired type.
	ENOPROTOOPT                  // No message of the desired type.
	ENOSPC                       // No space left on device.
	ENOSYS                       // Function not supported.
	ENOTCONN                     // The socket is not connected.
	ENOTDIR                      // Not a directory or a symbolic link to a directory.
	ENOTEMPTY                    // Directory not empty.
	ENOTRECOVERABLE              // State not recoverable.
	ENOTSOCK                     // Not a socket.
	ENOTSUP                      // Not supported, or operation not supported on socket.
	ENOTTY                       // Inappropriate I/O control operation.
	ENXIO                        // No such device or address.
	EOVERFLOW                    // Value too large to be stored in data type.
	EOWNERDEAD                   // Previous owner died.
	EPERM                        // Operation not permitted.
	EPIPE                        // Broken pipe.
	EPROTO                       // Protocol error.
	EPROTONOSUPPORT              // Protocol error.
	EPROTOTYPE                   // Protocol wrong type for socket.
	ERANGE                       // Result too large.
	EROFS                        // Read-only file system.
	ESPIPE                       // Invalid seek.
	ESRCH                        // No such process.
	ESTALE                       // Reserved.
	ETIMEDOUT                    // Connection timed out.
	ETXTBSY                      // Text file busy.
	EXDEV                        // Cross-device link.
	ENOTCAPABLE                  // Extension: capabilities insufficient.
)

// errnoNames names every errno, by number.
var errnoNames = [...]string{
	ESUCCESS:        "success",
	E2BIG:           "E2BIG",
	EACCES:          "EACCES",
	EADDRINUSE:      "EADDRINUSE",
	EADDRNOTAVAIL:   "EADDRNOTAVAIL",
	EAFNOSUPPORT:    "EAFNOSUPPORT",
	EAGAIN:          "EAGAIN",
	EALREADY:        "EALREADY",
	EBADF:           "EBADF",
	EBADMSG:         "EBADMSG",
	EBUSY:           "EBUSY",
	ECANCELED:       "ECANCELED",
	ECHILD:          "ECHILD",
	ECONNABORTED:    "ECONNABORTED",
	ECONNREFUSED:    "ECONNREFUSED",
	ECONNRESET:      "ECONNRESET",
	EDEADLK:         "EDEADLK",
	EDESTADDRREQ:    "EDESTADDRREQ",
	EDOM:            "EDOM",
	EDQUOT:          "EDQUOT",
	EEXIST:          "EEXIST",
	EFAULT:          "EFAULT",
	EFBIG:           "EFBIG",
	EHOSTUNREACH:    "EHOSTUNREACH",
	EIDRM:           "EIDRM",
	EILSEQ:          "EILSEQ",
	EINPROGRESS:     "EINPROGRESS",
	EINTR:           "EINTR",
	EINVAL:          "EINVAL",
	EIO:             "EIO",
	EISCONN:         "EISCONN",
	EISDIR:          "EISDIR",
	ELOOP:           "ELOOP",
	EMFILE:          "EMFILE",
	EMLINK:          "EMLINK",
	EMSGSIZE:        "EMSGSIZE",
	EMULTIHOP:       "EMULTIHOP",
	ENAMETOOLONG:    "ENAMETOOLONG",
	ENETDOWN:        "ENETDOWN",
	ENETRESET:       "ENETRESET",
	ENETUNREACH:     "ENETUNREACH",
	ENFILE:          "ENFILE",
	ENOBUFS:         "ENOBUFS",
	ENODEV:          "ENODEV",
	ENOENT:          "ENOENT",
	ENOEXEC:         "ENOEXEC",
	ENOLCK:          "ENOLCK",
	ENOLINK:         "ENOLINK",
	ENOMEM:          "ENOMEM",
	ENOMSG:          "ENOMSG",
	ENOPROTOOPT:     "ENOPROTOOPT",
	ENOSPC:          "ENOSPC",
	ENOSYS:          "ENOSYS",
	ENOTCONN:        "ENOTCONN",
	ENOTDIR:         "ENOTDIR",
	ENOTEMPTY:       "ENOTEMPTY",
	ENOTRECOVERABLE: "ENOTRECOVERABLE",
	ENOTSOCK:        "ENOTSOCK",
	ENOTSUP:         "ENOTSUP",
	ENOTTY:          "ENOTTY",
	ENXIO:           "ENXIO",
	EOVERFLOW:       "EOVERFLOW",
	EOWNERDEAD:      "EOWNERDEAD",
	EPERM:           "EPERM",
	EPIPE:           "EPIPE",
	EPROTO:          "EPROTO",
	EPROTONOSUPPORT: "EPROTONOSUPPORT",
	EPROTOTYPE:      "EPROTOTYPE",
	ERANGE:          "ERANGE",
	EROFS:           "EROFS",
	ESPIPE:          "ESPIPE",
	ESRCH:           "ESRCH",
	ESTALE:          "ESTALE",
	ETIMEDOUT:       "ETIMEDOUT",
	ETXTBSY:         "ETXTBSY",
	EXDEV:           "EXDEV",
	ENOTCAPABLE:     "ENOTCAPABLE",
}

// ErrnoName names a WASI function's result: "success" for 0, the POSIX name
// ("ENOENT") for an errno of the table, and "errno N" for any other number,
// which no WASI function returns.
func ErrnoName(result uint32) string {
	if result < uint32(len(errnoNames)) {
		return errnoNames[result]
	}
	return fmt.Sprintf("errno %d", result)
}

// String is the errno's name, as ErrnoName gives it.
func (e Errno) String() string { return ErrnoName(uint32(e)) }
