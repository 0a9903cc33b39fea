package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a product function may be without saying
// why in its doc comment ("Long because ...").
const maxFuncLines = 80

// Product functions read as a list of steps: one over maxFuncLines lines
// (tests, test infrastructure and vendored code aside) must say in its doc
// comment why it stays one function ("Long because ...").
func TestNoLongFunctionWithoutAReason(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case "internal", "third_party", ".git", "tools":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		checked++
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if n > maxFuncLines && (fd.Doc == nil || !strings.Contains(fd.Doc.Text(), "Long because")) {
				t.Errorf("%s: %s is %d lines: split it into named steps, or say in its doc comment why it stays one (\"Long because ...\")", rel, fd.Name.Name, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: the walk no longer matches the tree", checked)
	}
}
