// Command hello greets from inside the runtime: it prints its greeting, its
// arguments and the environment it was given.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	who := "world"
	if len(os.Args) > 1 {
		who = strings.Join(os.Args[1:], " ")
	}
	fmt.Printf("%s, %s, from inside wazero!\n", greeting, who)
	fmt.Printf("argv: %q\n", os.Args)
	env := os.Environ()
	sort.Strings(env)
	fmt.Printf("env: %q\n", env)
}
