module github.com/neogo/neo

go 1.26.8
