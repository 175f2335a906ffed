package codecache

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestDiskEntryChangedWhileRead: the host changes the module's disk
// entry as fast as it can while runs read it: bytes appended and cut off
// again, a byte flipped in place and restored, another module's entry
// renamed over it and the good one back, a directory put at its name. An
// entry is read once, by its descriptor, and the code copied is the code
// the MAC covered: every run either refuses the entry (or finds none) or
// imports into its memory tier exactly the code the good entry holds.
func TestDiskEntryChangedWhileRead(t *testing.T) {
	mod, other := module(t), otherModule(t)
	disk := t.TempDir()
	mem := memDir(t)
	run(t, mem, disk, mod, keyOf(1))
	entry := diskEntry(t, disk)
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := Open(mod, Options{Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	names, err := seeded.entries()
	if err != nil || len(names) != 1 {
		t.Fatalf("the seeding run's memory tier: %v %v", names, err)
	}
	goodCode, err := os.ReadFile(filepath.Join(seeded.wazeroDir(), names[0]))
	if err != nil {
		t.Fatal(err)
	}
	otherDisk := t.TempDir()
	run(t, memDir(t), otherDisk, other, keyOf(1))
	otherEntry, err := os.ReadFile(diskEntry(t, otherDisk))
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var host sync.WaitGroup
	host.Add(1)
	go func() {
		defer host.Done()
		scratch := t.TempDir()
		put := func(name string, data []byte) {
			p := filepath.Join(disk, name)
			os.WriteFile(p, data, 0o600)
			os.Rename(p, entry)
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 4 {
			case 0: // grown while read, then cut back
				if f, err := os.OpenFile(entry, os.O_WRONLY|os.O_APPEND, 0); err == nil {
					f.Write(bytes.Repeat([]byte{0xcc}, 64<<10))
					f.Truncate(int64(len(good)))
					f.Close()
				}
			case 1: // a byte of the code flipped in place, then restored
				if f, err := os.OpenFile(entry, os.O_WRONLY, 0); err == nil {
					at := int64(len(good) / 2)
					f.WriteAt([]byte{good[at] ^ 0x40}, at)
					f.WriteAt(good[at:at+1], at)
					f.Close()
				}
			case 2: // another module's entry, then the good one
				put("other.tmp", otherEntry)
				put("good.tmp", good)
			case 3: // a directory at its name, then the good entry
				aside := filepath.Join(scratch, "aside")
				if os.Rename(entry, aside) == nil {
					os.Mkdir(entry, 0o700)
					os.Remove(entry)
					os.Rename(aside, entry)
				}
			}
		}
	}()
	counts := map[Outcome]int{}
	for range 300 {
		c, err := Open(mod, Options{Memory: memDir(t), Disk: disk, Key: keyOf(1)})
		if err != nil {
			t.Fatal(err)
		}
		counts[c.Outcome()]++
		switch c.Outcome() {
		case DiskHit:
			names, err := c.entries()
			if err != nil || len(names) != 1 {
				t.Fatalf("a disk hit's memory tier: %v %v", names, err)
			}
			code, err := os.ReadFile(filepath.Join(c.wazeroDir(), names[0]))
			if err != nil {
				t.Fatal(err)
			}
			if names[0] != filepath.Base(names[0]) || !bytes.Equal(code, goodCode) {
				t.Fatalf("a disk hit imported %d bytes of code other than the good entry's %d", len(code), len(goodCode))
			}
		case Refused, Miss:
			if left, _ := os.ReadDir(c.wazeroDir()); len(left) != 0 {
				t.Fatalf("a %v left %v in the memory tier", c.Outcome(), left)
			}
		default:
			t.Fatalf("outcome %v", c.Outcome())
		}
	}
	close(stop)
	host.Wait()
	t.Logf("300 runs against a changing entry: %d disk hits, %d refused, %d found none", counts[DiskHit], counts[Refused], counts[Miss])
}
