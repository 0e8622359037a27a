package e2e

import (
	"os"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
