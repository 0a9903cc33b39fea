package lab

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/sitectl/sitectl/inventory"
)

// TestLabInventoryMatchesTheSchema: the inventory the lab writes (a valid
// test inventory with every layer) validates against `sitectl inventory
// schema`, with and without MongoDB, and the loader accepts it.
func TestLabInventoryMatchesTheSchema(t *testing.T) {
	b, _ := json.Marshal(inventory.Schema())
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(inventory.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(inventory.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	for _, mongo := range []string{MongoSim, MongoAbsent} {
		e := &Env{Dir: t.TempDir()}
		e.state.Mongo = mongo
		src := e.inventoryYAML()
		if _, err := inventory.Parse("lab.yaml", []byte(src)); err != nil {
			t.Fatalf("mongo %s: the loader refuses the lab's inventory:\n%v\n%s", mongo, err, src)
		}
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(v)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err := s.Validate(inst); err != nil {
			t.Errorf("mongo %s: the schema refuses the lab's inventory: %v", mongo, err)
		}
	}
}
