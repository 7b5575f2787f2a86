package amqp

import "os"

var getenv = os.Getenv
