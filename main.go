// Command qkv looks inside transformer checkpoints: see README.md.
package main

//go:generate go run ./internal/gen -out testdata

import (
	"os"

	"github.com/qkvdev/qkv/cmd"
)

func main() { os.Exit(cmd.Execute()) }
