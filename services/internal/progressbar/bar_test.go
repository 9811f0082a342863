package progressbar

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		f    Frame
		want string
	}{
		{Frame{Label: "queued"}, "  0%  0/?  queued"},
		{Frame{Percent: 40, Done: 40, Total: 100, Label: "active"}, " 40%   40/100  active"},
		{Frame{Percent: 100, Done: 100, Total: 100, Label: "completed"}, "100%  100/100  completed"},
		{Frame{Percent: 250, Done: 3, Total: 2}, "100%  3/2"},
		{Frame{Percent: -5, Done: 0, Total: 7, Label: "active"}, "  0%  0/7  active"},
	} {
		if got := Text(tc.f); got != tc.want {
			t.Errorf("Text(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestRenderFitsTheWidth(t *testing.T) {
	f := Frame{Percent: 37, Done: 370, Total: 1000, Label: "active"}
	for _, width := range []int{1, 5, 12, 20, 25, 30, 40, 60, 80, 120, 300} {
		got := Render(f, width)
		if n := utf8.RuneCountInString(got); n >= width && width > 1 {
			t.Errorf("width %d: %d columns drawn, want fewer: %q", width, n, got)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("width %d: line breaks in %q", width, got)
		}
		if bar, _, ok := strings.Cut(strings.TrimPrefix(got, "["), "]"); strings.HasPrefix(got, "[") && ok && len(bar) > maxBarCells {
			t.Errorf("width %d: bar of %d cells, want at most %d", width, len(bar), maxBarCells)
		}
	}
	if got := Render(f, 20); strings.Contains(got, "[") {
		t.Errorf("width 20 leaves no room for a bar, got %q", got)
	}
	if got := Render(f, 300); !strings.HasPrefix(got, "["+strings.Repeat("=", 13)+">"+strings.Repeat(" ", 26)+"] ") {
		t.Errorf("width 300: want a 40-cell bar 37%% full, got %q", got)
	}
	if got, want := Render(Frame{Percent: 100, Done: 2, Total: 2, Label: "completed"}, 40), "[================] 100%  2/2  completed"; got != want {
		t.Errorf("full bar: got %q, want %q", got, want)
	}
	if got := Render(f, 0); utf8.RuneCountInString(got) >= DefaultWidth {
		t.Errorf("width 0 falls back to %d, got %q", DefaultWidth, got)
	}
}

func TestTTYRedrawsInPlace(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, Options{TTY: true, Width: 50, Color: true})
	must(t, b.Update(Frame{Label: "queued"}))
	must(t, b.Update(Frame{Percent: 50, Done: 1, Total: 2, Label: "active"}))
	must(t, b.Note("reconnecting…"))
	must(t, b.Update(Frame{Percent: 100, Done: 2, Total: 2, Label: "completed"}))
	must(t, b.Finish("completed: added 2"))
	out := buf.String()
	want := eraseLine + Render(Frame{Label: "queued"}, 50) +
		eraseLine + Render(Frame{Percent: 50, Done: 1, Total: 2, Label: "active"}, 50) +
		eraseLine + dimOn + "reconnecting…" + dimOff + "\n" + Render(Frame{Percent: 50, Done: 1, Total: 2, Label: "active"}, 50) +
		eraseLine + Render(Frame{Percent: 100, Done: 2, Total: 2, Label: "completed"}, 50) +
		"\ncompleted: added 2\n"
	if out != want {
		t.Fatalf("TTY output\n got %q\nwant %q", out, want)
	}
	for i, line := range strings.Split(out, "\n") {
		for _, seg := range strings.Split(line, "\r") {
			if n := utf8.RuneCountInString(strings.TrimPrefix(seg, "\x1b[2K")); n >= 50 && !strings.Contains(seg, dimOn) {
				t.Errorf("line %d: %d columns on a 50-column terminal: %q", i, n, seg)
			}
		}
	}
}

func TestPlainPrintsOneLinePerChange(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, Options{Width: 10, Color: true}) // width and color do not apply off a terminal
	must(t, b.Update(Frame{Label: "queued"}))
	must(t, b.Update(Frame{Label: "queued"}))
	must(t, b.Update(Frame{Percent: 50, Done: 1, Total: 2, Label: "active"}))
	must(t, b.Note("reconnecting…"))
	must(t, b.Update(Frame{Percent: 50, Done: 1, Total: 2, Label: "active"}))
	must(t, b.Update(Frame{Percent: 100, Done: 2, Total: 2, Label: "completed"}))
	must(t, b.Finish("completed: added 2"))
	want := "  0%  0/?  queued\n 50%  1/2  active\nreconnecting…\n100%  2/2  completed\ncompleted: added 2\n"
	if got := buf.String(); got != want {
		t.Fatalf("plain output\n got %q\nwant %q", got, want)
	}
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Fatal("plain output has control characters")
	}
}

func TestDetectOffATerminal(t *testing.T) {
	if o := Detect(&bytes.Buffer{}); o.TTY {
		t.Fatalf("a buffer is not a terminal: %+v", o)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
