//go:build unix

package journal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

const childEnv = "SITECTL_JOURNAL_TEST_CHILD"

// TestHelperEmitter is the child process of TestSIGKILLMidStream: it writes a
// journal as fast as it can until it is killed. It does nothing in a normal
// test run.
func TestHelperEmitter(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	dir, id, _ := strings.Cut(spec, "|")
	w, err := Create(dir, id, WithErrorHandler(func(err error) {
		fmt.Fprintln(os.Stderr, "journal error:", err)
		os.Exit(3)
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s := &event.Stamper{RunID: id, Next: w}
	s.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{ID: id, Runbook: "takeover", Mode: "run"}})
	// Records of varied, sometimes large, size widen the window in which
	// the kill lands inside a write.
	big := strings.Repeat("0123456789abcdef", 1<<12) // 64 KiB
	for i := 1; ; i++ {
		s.Emit(event.Event{Kind: event.StepAct, Task: "t" + strconv.Itoa(i), Stdout: big[:(i*7919)%len(big)]})
		if i == 20 {
			fmt.Println("ready")
		}
	}
}

func TestSIGKILLMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	truncated := 0
	const rounds = 6
	for round := 0; round < rounds; round++ {
		dir, id := t.TempDir(), fmt.Sprintf("kill-%d", round)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEmitter$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir+"|"+id)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not get ready: %q %v; stderr: %s", line, err, stderr.String())
		}
		time.Sleep(time.Duration(round*3) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
		}

		r, err := Read(Path(dir, id))
		if err != nil {
			t.Fatalf("round %d: Read after SIGKILL: %v", round, err)
		}
		if len(r.Events) < 21 {
			t.Fatalf("round %d: only %d records survived; 21 were fsynced before 'ready'", round, len(r.Events))
		}
		for i, e := range r.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("round %d: record %d has seq %d: a record was lost", round, i, e.Seq)
			}
		}
		if r.Info == nil || !r.Interrupted() || r.LastSeq != int64(len(r.Events)) {
			t.Fatalf("round %d: info %v interrupted %v", round, r.Info, r.Interrupted())
		}
		if r.Truncated {
			truncated++
		}
		// Recording an unlock against the killed run works and leaves a
		// journal that reads cleanly.
		w, err := OpenAppend(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		w.Emit(event.Event{Kind: event.Lock, RunID: id, Seq: r.LastSeq + 1, Message: "lock broken"})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r2, err := Read(Path(dir, id))
		if err != nil || r2.Truncated || len(r2.Events) != len(r.Events)+1 {
			t.Fatalf("round %d: after OpenAppend: %v truncated=%v n=%d", round, err, r2.Truncated, len(r2.Events))
		}
	}
	t.Logf("%d of %d kills landed mid-record", truncated, rounds)
}
