package history

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// ContinueAfter is the Filter.Continue token of the page after j: an
// opaque string (base64 of the record's creation time and UID).
func ContinueAfter(j Job) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(j.Created.UnixMilli(), 10) + "/" + j.UID))
}

// ParseContinue decodes a Filter.Continue token into the creation time
// (milliseconds since the epoch) and UID of the record the page starts
// after.
func ParseContinue(token string) (createdMS int64, uid string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", fmt.Errorf("continue token %q: not a token from a previous page: %w", token, err)
	}
	ms, uid, ok := strings.Cut(string(raw), "/")
	if !ok || uid == "" {
		return 0, "", fmt.Errorf("continue token %q: not a token from a previous page", token)
	}
	createdMS, err = strconv.ParseInt(ms, 10, 64)
	if err != nil || createdMS < 0 {
		return 0, "", fmt.Errorf("continue token %q: not a token from a previous page", token)
	}
	return createdMS, uid, nil
}
