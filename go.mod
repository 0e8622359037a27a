module github.com/pollreload/pollreload

go 1.26.0
