package remote

import (
	"crypto/sha256"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsCache holds the parsed known_hosts files of this process, one
// entry per list of files: a fleet's hosts usually share one file, and
// parsing it for every host costs each dial time and memory in proportion
// to the fleet (200 hosts: 40,000 lines parsed and kept, 9 MB of a
// --watch process's heap). The files are still read at every dial: an
// entry is used only for exactly the contents it was parsed from (their
// SHA-256), so the check is as strict as parsing at each dial, an edited
// file counts at the next dial.
var knownHostsCache = struct {
	sync.Mutex
	m map[string]*knownHostsEntry
}{m: map[string]*knownHostsEntry{}}

type knownHostsEntry struct {
	sum [sha256.Size]byte
	cb  ssh.HostKeyCallback
}

// contentSum hashes the files' names and contents.
func contentSum(files []string) ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s, nil
}

// parseKnownHosts is knownhosts.New(files...), cached (see knownHostsCache).
func parseKnownHosts(files ...string) (ssh.HostKeyCallback, error) {
	key := strings.Join(files, "\x00")
	sum, err := contentSum(files)
	if err != nil {
		return knownhosts.New(files...) // says which file and why
	}
	knownHostsCache.Lock()
	e := knownHostsCache.m[key]
	knownHostsCache.Unlock()
	if e != nil && e.sum == sum {
		return e.cb, nil
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, err
	}
	// Kept only if the files did not change while they were parsed.
	if after, err := contentSum(files); err == nil && after == sum {
		knownHostsCache.Lock()
		knownHostsCache.m[key] = &knownHostsEntry{sum: sum, cb: cb}
		knownHostsCache.Unlock()
	}
	return cb, nil
}
