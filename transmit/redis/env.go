package redis

import "os"

var getenv = os.Getenv
