package webhook

import "os"

var getenv = os.Getenv
