package neo

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
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
		"neonet":          {module + "/parttab", module + "/nodetab", module + "/storage", module + "/ctl", "github.com/prometheus/"},
		"storage/backend": {module + "/neonet"},
		// Metrics are read from the nodes' Status by internal/nodehttp:
		// the nodes and their links keep no Prometheus dependency.
		"master":  {"github.com/prometheus/"},
		"storage": {"github.com/prometheus/"},
		"admin":   {"github.com/prometheus/"},
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

// Pure packages are state machines and data structures that the nodes
// drive: no I/O, no clock, no goroutine, no global logger. Their purity
// is what lets tests replay them deterministically, so it is checked in
// their source rather than trusted.
var purePackages = []string{"parttab", "nodetab", "master/core"}

// impureImports are refused in pure packages: an entry ending in "/"
// also refuses its subpackages.
var impureImports = []string{
	"net", "net/", "os", "os/", "syscall", "io/ioutil", "database/sql", "database/sql/",
	"log", "log/syslog", "math/rand", "math/rand/", "crypto/rand", "sync", "sync/", "unsafe",
	module + "/neonet", module + "/storage", module + "/admin", module + "/client",
	module + "/ctl", module + "/cmd/", module + "/internal/",
}

// impureCalls are the package-level functions refused in pure packages,
// by import path: reading the clock or waiting on it, and writing to the
// process's default logger or standard output. Time enters as an
// argument or through a clock passed in their configuration; logs go to
// a passed *slog.Logger.
var impureCalls = map[string][]string{
	"time": {"Now", "Since", "Until", "After", "AfterFunc", "Tick", "NewTicker", "NewTimer", "Sleep"},
	"log/slog": {"Debug", "DebugContext", "Info", "InfoContext", "Warn", "WarnContext", "Error",
		"ErrorContext", "Log", "LogAttrs", "Default", "SetDefault", "SetLogLoggerLevel"},
	"fmt": {"Print", "Printf", "Println"},
}

func TestPurePackages(t *testing.T) {
	for _, dir := range purePackages {
		problems, err := impurities(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("pure package %s: %s", dir, p)
		}
	}
}

// impurities parses the non-test Go files of the package in dir and
// lists what makes it impure, each with its position.
func impurities(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var problems []string
	report := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	parsed := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		parsed++
		// The local name of each import whose calls are watched.
		watched := map[string]string{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range impureImports {
				if p == b || strings.HasSuffix(b, "/") && strings.HasPrefix(p, b) {
					report(imp.Pos(), "imports %s", p)
				}
			}
			if _, ok := impureCalls[p]; !ok {
				continue
			}
			local := path.Base(p)
			if imp.Name != nil {
				local = imp.Name.Name
			}
			if local == "." {
				report(imp.Pos(), "dot-imports %s, whose calls are checked", p)
			}
			watched[local] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				report(n.Pos(), "starts a goroutine")
			case *ast.SelectorExpr:
				x, ok := n.X.(*ast.Ident)
				if !ok {
					break
				}
				p, ok := watched[x.Name]
				if !ok {
					break
				}
				for _, fn := range impureCalls[p] {
					if n.Sel.Name == fn {
						report(n.Pos(), "uses %s.%s", p, fn)
					}
				}
			}
			return true
		})
	}
	if parsed == 0 {
		return nil, fmt.Errorf("no Go file in %s", dir)
	}
	return problems, nil
}
