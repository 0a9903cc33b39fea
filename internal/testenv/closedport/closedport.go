// Package closedport gives tests a loopback TCP address that refuses
// connections, and that nothing else can take while the test runs: a
// socket bound to it but not listening. (A port merely closed after
// Listen can be taken by another test in the meantime, which then accepts
// or resets the connection instead of refusing it.)
package closedport

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Port returns a loopback TCP port that refuses connections until the
// test ends.
func Port(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("closedport: socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("closedport: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("closedport: getsockname: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// Addr is Port as "127.0.0.1:port".
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}
