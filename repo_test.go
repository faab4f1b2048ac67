package neo

import (
	"go/build"
	"os/exec"
	"strings"
	"testing"
)

// goList returns the packages of this module with their imports.
func goList(t *testing.T) map[string]*build.Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{.Doc}}|{{join .Imports \",\"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]*build.Package{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		p := &build.Package{ImportPath: f[0], Doc: f[1]}
		if f[2] != "" {
			p.Imports = strings.Split(f[2], ",")
		}
		pkgs[f[0]] = p
	}
	return pkgs
}

const module = "github.com/neogo/neo"

// Every package tells a new developer what it is for.
func TestEveryPackageHasDoc(t *testing.T) {
	for path, p := range goList(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", path)
		}
	}
}

// Dependencies point one way: the protocol and the pure packages know
// nothing of the roles built on them, and pure packages do no I/O.
func TestDependencyDirection(t *testing.T) {
	rules := map[string][]string{
		"proto":           {module + "/"},
		"parttab":         {module + "/neonet", module + "/storage", module + "/ctl", "net", "database/sql"},
		"nodetab":         {module + "/neonet", module + "/storage", module + "/ctl", "net", "database/sql"},
		"neonet":          {module + "/parttab", module + "/nodetab", module + "/storage", module + "/ctl"},
		"storage/backend": {module + "/neonet"},
	}
	for path, p := range goList(t) {
		rel := strings.TrimPrefix(path, module+"/")
		for prefix, banned := range rules {
			if rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
				continue
			}
			for _, imp := range p.Imports {
				for _, b := range banned {
					if imp == b || strings.HasPrefix(imp, b) && (strings.HasSuffix(b, "/") || strings.HasPrefix(imp, b+"/")) {
						if strings.HasPrefix(imp, module+"/"+prefix) {
							continue // own subpackages
						}
						t.Errorf("%s imports %s, which the layering forbids", path, imp)
					}
				}
			}
		}
	}
}
