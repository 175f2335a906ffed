package cmdline

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Man writes a man page in roff (man(7) macros) for the program prog,
// described by intro, with a section per command: its synopses, its help
// text as paragraphs (indented lines, such as examples, kept as they are)
// and its flags from its real flag sets.
func Man(w io.Writer, prog, intro string, docs []Doc) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"%s\" \"User Commands\"\n", strings.ToUpper(prog), prog)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", prog, roff(intro))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n.I COMMAND\n[\\fIFLAGS\\fR] [\\fIARGUMENTS\\fR]\n", prog)
	b.WriteString(".SH COMMANDS\n")
	for _, d := range docs {
		fmt.Fprintf(&b, ".SS %s\n%s.\n", d.Name, roff(d.Summary))
		usage, body, _ := strings.Cut(d.Help, "\n\n")
		b.WriteString(".PP\n.nf\n")
		for _, line := range strings.Split(usage, "\n") {
			fmt.Fprintf(&b, ".B %s\n", roff(strings.TrimSpace(strings.TrimPrefix(line, "Usage: "))))
		}
		b.WriteString(".fi\n")
		manBody(&b, body)
		manFlags(&b, d)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// manBody writes help text as roff: a paragraph per blank-line-separated
// block, its indented lines unfilled, the rest filled.
func manBody(b *strings.Builder, text string) {
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		b.WriteString(".PP\n")
		literal := false
		for _, line := range strings.Split(para, "\n") {
			indented := strings.HasPrefix(line, "  ")
			switch {
			case indented && !literal:
				b.WriteString(".RS\n.nf\n")
			case !indented && literal:
				b.WriteString(".fi\n.RE\n")
			}
			literal = indented
			if indented {
				line = strings.TrimPrefix(line, "  ")
			}
			b.WriteString(roff(line) + "\n")
		}
		if literal {
			b.WriteString(".fi\n.RE\n")
		}
	}
}

// manFlags writes each distinct flag set of the command.
func manFlags(b *strings.Builder, d Doc) {
	for _, g := range d.flagGroups() {
		fmt.Fprintf(b, ".PP\n%s\n", roff(g.head))
		g.fs.VisitAll(func(f *flag.Flag) {
			value, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(b, ".TP\n.B %s", roff(dashed(f.Name)))
			if value != "" {
				fmt.Fprintf(b, " \\fI%s\\fR", roff(value))
			}
			fmt.Fprintf(b, "\n%s\n", roff(usage))
		})
	}
}

// roff escapes text for a roff line: backslashes, hyphens (so that flags
// copy as ASCII), and a leading dot or quote that roff would take as a
// request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
