package cmdline

import (
	"fmt"
	"io"
	"strings"
)

// Shells are the shells Completion writes a script for.
var Shells = []string{"bash", "zsh", "fish"}

// Completion writes the completion script of shell for prog: it completes
// the command names, a command's subcommands, and the flags each command
// (or subcommand) takes, from docs' flag sets; elsewhere, file names.
func Completion(w io.Writer, shell, prog string, docs []Doc) error {
	var s string
	switch shell {
	case "bash":
		s = bashCompletion(prog, docs)
	case "zsh":
		s = zshCompletion(prog, docs)
	case "fish":
		s = fishCompletion(prog, docs)
	default:
		return fmt.Errorf("no completion for the shell %q: it is one of %s", shell, strings.Join(Shells, ", "))
	}
	_, err := io.WriteString(w, s)
	return err
}

// caseArms writes a shell case statement's arms, one per command: its
// flags, or its subcommands at the word after it and then each one's
// flags. set makes the body that offers words; at2 is the shell's test for
// "the word being completed follows the command's name", word2 the word
// that names the subcommand.
func caseArms(b *strings.Builder, docs []Doc, set func(words []string) string, at2, word2 string) {
	for _, d := range docs {
		if len(d.Subcommands) == 0 {
			fmt.Fprintf(b, "\t%s) %s;;\n", d.Name, set(dashedAll(d.flagNames(""))))
			continue
		}
		fmt.Fprintf(b, "\t%s)\n\t\tif %s; then %s\n\t\telse case \"%s\" in\n", d.Name, at2, set(d.Subcommands), word2)
		for _, sub := range d.Subcommands {
			fmt.Fprintf(b, "\t\t\t%s) %s;;\n", sub, set(dashedAll(d.flagNames(sub))))
		}
		b.WriteString("\t\tesac; fi;;\n")
	}
}

func dashedAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = dashed(n)
	}
	return out
}

func names(docs []Doc) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Name)
	}
	return out
}

func bashCompletion(prog string, docs []Doc) string {
	var b strings.Builder
	fn := "_" + prog
	fmt.Fprintf(&b, "# bash completion for %[1]s; load it with: source <(%[1]s completion bash)\n", prog)
	fmt.Fprintf(&b, "%s() {\n\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" words=\"\"\n", fn)
	fmt.Fprintf(&b, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\twords=\"%s\"\n\telse\n\tcase \"${COMP_WORDS[1]}\" in\n", strings.Join(names(docs), " "))
	caseArms(&b, docs, func(w []string) string { return `words="` + strings.Join(w, " ") + `"` },
		`[ "$COMP_CWORD" -eq 2 ]`, "${COMP_WORDS[2]}")
	b.WriteString("\tesac\n\tfi\n\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n")
	fmt.Fprintf(&b, "complete -o default -F %s %s\n", fn, prog)
	return b.String()
}

func zshCompletion(prog string, docs []Doc) string {
	var b strings.Builder
	fn := "_" + prog
	fmt.Fprintf(&b, "#compdef %[1]s\n# zsh completion for %[1]s; load it with: source <(%[1]s completion zsh)\n", prog)
	fmt.Fprintf(&b, "%s() {\n\tlocal -a cands\n\tif (( CURRENT == 2 )); then\n\t\tcands=(%s)\n\telse\n\tcase \"${words[2]}\" in\n", fn, strings.Join(names(docs), " "))
	caseArms(&b, docs, func(w []string) string { return "cands=(" + strings.Join(w, " ") + ")" },
		"(( CURRENT == 3 ))", "${words[3]}")
	b.WriteString("\tesac\n\tfi\n\tcompadd -a cands\n\tif (( CURRENT > 2 )) && [[ ${words[CURRENT]} != -* ]]; then _files; fi\n}\n")
	fmt.Fprintf(&b, "if (( $+functions[compdef] )); then compdef %s %s; fi\n", fn, prog)
	return b.String()
}

func fishCompletion(prog string, docs []Doc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# fish completion for %[1]s; load it with: %[1]s completion fish | source\n", prog)
	// __PROG_at CMD [SUB]: the words typed so far are PROG CMD [SUB] and
	// maybe more (with one argument: exactly PROG CMD).
	fmt.Fprintf(&b, "function __%[1]s_at\n\tset -l w (commandline -opc)\n\ttest (count $w) -ge 2; and test \"$w[2]\" = \"$argv[1]\"; or return 1\n"+
		"\tif test (count $argv) -eq 1; return 0; end\n\tif test \"$argv[2]\" = '-'; test (count $w) -eq 2; return; end\n\ttest (count $w) -ge 3; and test \"$w[3]\" = \"$argv[2]\"\nend\n", prog)
	fmt.Fprintf(&b, "complete -c %s -n __fish_use_subcommand -f\n", prog)
	for _, d := range docs {
		fmt.Fprintf(&b, "complete -c %s -n __fish_use_subcommand -f -a %s -d %s\n", prog, d.Name, fishQuote(d.Summary))
		for _, sub := range d.Subcommands {
			fmt.Fprintf(&b, "complete -c %s -n '__%s_at %s -' -f -a %s\n", prog, prog, d.Name, sub)
		}
		subs := d.Subcommands
		if len(subs) == 0 {
			subs = []string{""}
		}
		for _, sub := range subs {
			fs := d.Flags[sub]
			if fs == nil {
				continue
			}
			cond := strings.TrimSpace(d.Name + " " + sub)
			for _, name := range d.flagNames(sub) {
				opt := "-l " + name
				if len(name) == 1 {
					opt = "-s " + name
				}
				_, usage := unquote(fs, name)
				fmt.Fprintf(&b, "complete -c %s -n '__%s_at %s' %s -d %s\n", prog, prog, cond, opt, fishQuote(usage))
			}
		}
	}
	return b.String()
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}
