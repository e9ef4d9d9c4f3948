module handler/function

go 1.26

require github.com/fintrans/fintrans/shared v0.0.0

replace github.com/fintrans/fintrans/shared => ./shared
