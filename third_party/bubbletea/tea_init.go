package tea

// sitectl's copy of Bubble Tea v1.3.10 (the package
// github.com/sitectl/sitectl/third_party/bubbletea; see SITECTL-PATCH.md)
// differs from the release only here: upstream's init() called
// lipgloss.HasDarkBackground(), which makes termenv query the terminal for
// its background colour (OSC 11, then a cursor position request) and wait
// up to 5 s for the answer, at the start of every program that links Bubble
// Tea, whatever it does. On a terminal that answers neither, every sitectl
// command, and the board's first frame, stayed blank for 5 s. sitectl uses
// no adaptive colour, so nothing needs the background colour.
// TestNoColourQueryAtStart (cmd/root) guards it. Upstream says the
// workaround goes away in v2; drop this copy when sitectl moves there.
