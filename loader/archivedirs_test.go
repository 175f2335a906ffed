package loader

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// A .tar bundle whose manifest mounts, by a relative path, a directory the
// archive holds entries under is refused with E1047: its relative dirs are
// host directories beside the archive, and the archive's own entries are
// neither mounted nor measured. Any other tar bundle reads as before, its
// Archive set.
func TestArchiveDirsInsideAreRefused(t *testing.T) {
	manifest := func(dirs string) tarEntry {
		return tarEntry{name: ManifestName, data: []byte("name = \"x\"\nprofiles = [\"debug\"]\ndirs = [" + dirs + "]\n")}
	}
	mod := tarEntry{name: DefaultModule, data: minimalModule}
	for name, tc := range map[string]struct {
		entries []tarEntry
		refused bool
	}{
		"a file under the mounted dir":          {[]tarEntry{manifest(`"data::/data"`), mod, {name: "data/notes.txt", data: []byte("x")}}, true},
		"the dir's own entry, ./ prefixed":      {[]tarEntry{{name: "./data/", typ: tar.TypeDir}, manifest(`"data::/data"`), mod}, true},
		"a deeper mount":                        {[]tarEntry{manifest(`"a::/a", "data/sub::/sub"`), mod, {name: "data/sub/f", data: []byte("x")}}, true},
		"the bundle's own directory":            {[]tarEntry{manifest(`".::/b"`), mod, {name: "other/f", data: []byte("x")}}, true},
		"an unclean path":                       {[]tarEntry{manifest(`"./data/::/data"`), mod, {name: "data/f", data: []byte("x")}}, true},
		"entries the manifest does not mount":   {[]tarEntry{manifest(`"data::/data"`), mod, {name: "database/f", data: []byte("x")}}, false},
		"an absolute mount":                     {[]tarEntry{manifest(`"/srv/data::/data"`), mod, {name: "srv/data/f", data: []byte("x")}}, false},
		"no nested entries":                     {[]tarEntry{manifest(`"data::/data"`), mod}, false},
		"nested entries, the mount beside them": {[]tarEntry{manifest(`"out::/out::rw"`), mod, {name: "data/f", data: []byte("x")}}, false},
	} {
		b, err := FromTar(bytes.NewReader(makeTar(t, tc.entries...)), "b.tar")
		if tc.refused {
			if codeOf(err) != errcode.ArchiveDirInside || !strings.Contains(err.Error(), "beside the archive") {
				t.Errorf("%s: %v; want E%d", name, err, errcode.ArchiveDirInside)
			}
			continue
		}
		if err != nil || !b.Archive {
			t.Errorf("%s: %v (archive %v)", name, err, b != nil && b.Archive)
		}
	}
}
