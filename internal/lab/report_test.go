package lab_test

// The HTML run report of a real drill, rendered by a real browser: headless
// Chromium (Debian package chromium) takes a screenshot; the test checks it
// is not blank and that the SVG timeline has one bar per task of the run.

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/journal"
)

// chromiumScreenshot renders file in headless Chromium, with a fresh
// profile and every background fetch off, and returns the PNG.
func chromiumScreenshot(t *testing.T, file string, width, height int) image.Image {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("chromium is not installed (scripts/install-test-deps.sh installs it)")
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height),
		"--screenshot="+shot, "file://"+file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if out := os.Getenv("SITECTL_SCREENSHOT_OUT"); out != "" { // docs/report-html.png
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// inked counts the pixels that are not (near) white, and those of the
// report's "ok" green (#38a169), the colour of a bar of a task that ended ok.
func inked(img image.Image) (ink, green int) {
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
		for x := bnd.Min.X; x < bnd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			if r < 235 || g < 235 || b < 235 {
				ink++
			}
			if absDiff(r, 0x38) < 12 && absDiff(g, 0xa1) < 12 && absDiff(b, 0x69) < 12 {
				green++
			}
		}
	}
	return ink, green
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestHTMLReportOfADrillInChromium: site A fails, B takes over (drill 1),
// and the takeover's HTML report is rendered in headless Chromium.
func TestHTMLReportOfADrillInChromium(t *testing.T) {
	d := newDrill(t)
	r, _ := d.failOverToB()
	if r.run == "" {
		t.Fatalf("no run id in the takeover's output:\n%s", r.out)
	}
	rep := d.exec("report", r.run, "--format", "html")
	if rep.code != 0 {
		t.Fatalf("sitectl report --format html: exit %d\n%s", rep.code, rep.out)
	}
	path, err := journal.Find(d.state, r.run)
	if err != nil {
		t.Fatal(err)
	}
	run, err := journal.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	tasks := journal.Timings(run).Tasks
	bars := regexp.MustCompile(`<rect class="bar [^"]*" data-task=`).FindAllString(rep.stdout, -1)
	if len(tasks) == 0 || len(bars) != len(tasks) {
		t.Errorf("%d bars in the SVG for %d tasks in the journal", len(bars), len(tasks))
	}
	if !regexp.MustCompile(`class="marker m-election"`).MatchString(rep.stdout) {
		t.Errorf("no election marked on the timeline of a takeover after a site loss")
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, []byte(rep.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	img := chromiumScreenshot(t, file, 1300, 1100)
	ink, green := inked(img)
	total := img.Bounds().Dx() * img.Bounds().Dy()
	t.Logf("screenshot %dx%d: %d inked pixels, %d of the ok bars' green", img.Bounds().Dx(), img.Bounds().Dy(), ink, green)
	if ink < total/50 {
		t.Errorf("the screenshot is (nearly) blank: %d of %d pixels inked", ink, total)
	}
	if green < 200 {
		t.Errorf("the screenshot shows no bar of a task that ended ok (%d green pixels)", green)
	}
}
