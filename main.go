// Command qkv looks inside transformer checkpoints: see README.md.
package main

import (
	"os"

	"github.com/qkvdev/qkv/cmd"
)

func main() { os.Exit(cmd.Execute()) }
