package board

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
)

// keyMap gathers every binding and its help text in one place.
type keyMap struct {
	Select     key.Binding
	Takeover   key.Binding
	Renounce   key.Binding
	Switchover key.Binding
	Plan       key.Binding
	Journal    key.Binding
	Help       key.Binding
	Quit       key.Binding
}

func defaultKeys() keyMap {
	return keyMap{
		Select:     key.NewBinding(key.WithKeys("up", "down", "tab"), key.WithHelp("↑/↓/tab", "select site")),
		Takeover:   key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "takeover")),
		Renounce:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "renounce")),
		Switchover: key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "switchover")),
		Plan:       key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "plan")),
		Journal:    key.NewBinding(key.WithKeys("j"), key.WithHelp("j", "journal")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

func (k keyMap) short() []key.Binding {
	return []key.Binding{k.Select, k.Takeover, k.Renounce, k.Switchover, k.Plan, k.Journal, k.Help, k.Quit}
}

// styles of the board. With NO_COLOR (or the Ascii profile in tests) lipgloss
// drops every attribute, so nothing may rely on colour alone: stale values
// also carry their age in text.
type styles struct {
	OK, Bad, Warn, Unknown, Stale, Title, Selected, Faint lipgloss.Style
}

func newStyles() styles {
	return styles{
		OK:       lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		Bad:      lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Warn:     lipgloss.NewStyle().Foreground(lipgloss.Color("3")),
		Unknown:  lipgloss.NewStyle().Foreground(lipgloss.Color("5")).Bold(true),
		Stale:    lipgloss.NewStyle().Faint(true),
		Title:    lipgloss.NewStyle().Bold(true),
		Selected: lipgloss.NewStyle().Reverse(true).Bold(true),
		Faint:    lipgloss.NewStyle().Faint(true),
	}
}
