package inventory

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite schema.json from the Go types")

// compiledSchema compiles Schema() with a real JSON Schema validator
// (draft 2020-12), which also checks that the schema itself is valid.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlAsJSON reads a YAML file as the JSON value a YAML language server
// validates (merge keys and aliases resolved).
func yamlAsJSON(t *testing.T, data []byte) (any, error) {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// TestSchemaAcceptsValidInventories validates the example and every valid
// test inventory against the schema; the loader accepts them too.
func TestSchemaAcceptsValidInventories(t *testing.T) {
	s := compiledSchema(t)
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, "example.yaml")
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(f, data); err != nil {
				t.Fatalf("the loader refuses it:\n%v", err)
			}
			v, err := yamlAsJSON(t, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(v); err != nil {
				t.Errorf("the schema refuses it:\n%v", err)
			}
			// And the loaded inventory, defaults applied, as
			// `sitectl inventory show -o json` prints it.
			inv, _ := Parse(f, data)
			b, _ := json.Marshal(AsMap(inv))
			shown, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err := s.Validate(shown); err != nil {
				t.Errorf("the schema refuses the loaded inventory:\n%v", err)
			}
		})
	}
}

// TestSchemaOrLoaderRefusesInvalidInventories: every invalid test inventory
// fails the schema or the loader (the schema checks the shape only), and
// those whose only fault is their shape fail the schema too.
func TestSchemaOrLoaderRefusesInvalidInventories(t *testing.T) {
	s := compiledSchema(t)
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
	shape := map[string]bool{"unknown_key.yaml": true, "wrong_types.yaml": true, "service_rules.yaml": true}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, loadErr := Parse(f, data)
			var schemaErr error
			v, err := yamlAsJSON(t, data)
			if err != nil {
				schemaErr = err // not even YAML
			} else {
				schemaErr = s.Validate(v)
			}
			if loadErr == nil && schemaErr == nil {
				t.Errorf("both the loader and the schema accept it")
			}
			if shape[filepath.Base(f)] && schemaErr == nil {
				t.Errorf("the schema accepts it; the loader says:\n%v", loadErr)
			}
		})
	}
}

// TestSchemaFileIsGenerated: inventory/schema.json (the file example.yaml's
// yaml-language-server line points at) is Schema() as printed by
// `sitectl inventory schema`. Regenerate: go test ./inventory -run SchemaFile -update
func TestSchemaFileIsGenerated(t *testing.T) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Schema()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("schema.json", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("schema.json")
	if err != nil || !bytes.Equal(got, b.Bytes()) {
		t.Errorf("schema.json is not Schema() (err %v); regenerate with: go test ./inventory -run SchemaFile -update", err)
	}
	ex, _ := os.ReadFile("example.yaml")
	if !strings.HasPrefix(string(ex), "# yaml-language-server: $schema=./schema.json\n") {
		t.Errorf("example.yaml does not start with the yaml-language-server line")
	}
}
