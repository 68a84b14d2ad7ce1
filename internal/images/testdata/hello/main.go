// Command hello is a tiny program the images tests build into an image.
package main

import "fmt"

func main() { fmt.Println("hello") }
