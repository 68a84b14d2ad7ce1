package policies

import (
	"embed"
	"io/fs"
)

//go:embed data.yaml lib mutate validate
var embedded embed.FS

// Embedded returns the policies compiled into the binary.
func Embedded() fs.FS { return embedded }
