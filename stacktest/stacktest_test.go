package stacktest_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/stacktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOnlyTestsImport: no non-test Go file of the module imports
// stacktest (it starts servers and fails tests; the binary must not carry
// it).
func TestOnlyTestsImport(t *testing.T) {
	root := filepath.Dir(filepath.Dir(stacktest.Testdata("x"))) // testdata/binance/x -> module root
	root = filepath.Dir(root)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	const path = "github.com/orderflow/orderflow/stacktest"
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || filepath.Dir(p) == filepath.Join(root, "stacktest") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, im := range f.Imports {
			if v, _ := strconv.Unquote(im.Path.Value); v == path {
				t.Errorf("%s imports %s", p, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d non-test files read under %s", checked, root)
	}
}

// TestTestdata: the path names a real recording.
func TestTestdata(t *testing.T) {
	if _, err := os.Stat(stacktest.Testdata("hft-spot-btcusdt-20240808.txt.gz")); err != nil {
		t.Fatal(err)
	}
}
