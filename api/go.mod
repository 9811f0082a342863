module github.com/jobwire/jobwire/api

go 1.26
