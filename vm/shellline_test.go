package vm

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// TestShellLine: a POSIX shell reads ShellLine's output back as the same
// arguments, whatever they hold; a plain argument is left unquoted.
func TestShellLine(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here to read the line back")
	}
	args := []string{"qemu-system-x86_64", "-append", "console=ttyS0 quiet", "", "it's", `a"b\c`, "$HOME", "x;y", "*", "-m", "1024M"}
	line := ShellLine(args)
	if !strings.HasPrefix(line, "qemu-system-x86_64 -append 'console=ttyS0 quiet' '' ") {
		t.Errorf("line = %s", line)
	}
	// The line is a command's arguments: printf prints each back.
	got, err := exec.Command(sh, "-c", "printf '%s\\0' "+ShellLine(args[1:])).Output()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSuffix(string(got), "\x00"), "\x00")
	if !reflect.DeepEqual(parts, args[1:]) {
		t.Errorf("sh read back %q, want %q", parts, args[1:])
	}
}
