module github.com/fintrans/fintrans

go 1.26.0

require github.com/fintrans/fintrans/shared v0.0.0

require (
	github.com/yannh/kubeconform v0.8.0 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
)

replace github.com/fintrans/fintrans/shared => ./shared
