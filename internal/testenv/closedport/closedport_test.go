package closedport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// The address refuses connections, every time, and cannot be listened on
// by anyone else while the test runs.
func TestAddrRefusesAndIsReserved(t *testing.T) {
	addr := Addr(t)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener took %s", addr)
	}
}
