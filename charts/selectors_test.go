package charts

import (
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selectorProblems finds references between objects that point nowhere: a
// Service or monitor selecting no pod or Service, a workload whose selector
// misses its own pods, and scrape endpoints naming ports that do not exist.
func selectorProblems(objects []object) []string {
	type pod struct {
		owner  string
		labels labels.Set
		ports  map[string]bool
	}
	var pods []pod
	var services []*corev1.Service
	var problems []string
	for _, o := range objects {
		if svc, ok := o.Value.(*corev1.Service); ok {
			services = append(services, svc)
		}
		meta, spec, ok := podSpecOf(o.Value)
		if !ok {
			continue
		}
		p := pod{owner: o.Kind + " " + o.Name, labels: labels.Set(meta.Labels), ports: map[string]bool{}}
		for _, c := range allContainers(spec) {
			for _, port := range c.Ports {
				p.ports[port.Name] = true
			}
		}
		pods = append(pods, p)
		if selector := workloadSelector(o.Value); selector != nil && !matches(selector, p.labels) {
			problems = append(problems, fmt.Sprintf("%s: its selector does not match its own pod template", p.owner))
		}
	}
	podsMatching := func(selector *metav1.LabelSelector) []pod {
		var found []pod
		for _, p := range pods {
			if matches(selector, p.labels) {
				found = append(found, p)
			}
		}
		return found
	}

	for _, svc := range services {
		selected := podsMatching(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if len(selected) == 0 {
			problems = append(problems, fmt.Sprintf("Service %s selects no pod", svc.Name))
		}
		for _, port := range svc.Spec.Ports {
			for _, p := range selected {
				if name := port.TargetPort.StrVal; name != "" && !p.ports[name] {
					problems = append(problems, fmt.Sprintf("Service %s targets port %q, which %s does not declare", svc.Name, name, p.owner))
				}
			}
		}
	}
	for _, o := range objects {
		switch m := o.Value.(type) {
		case *monitoringv1.PodMonitor:
			selected := podsMatching(&m.Spec.Selector)
			if len(selected) == 0 {
				problems = append(problems, fmt.Sprintf("PodMonitor %s selects no pod", m.Name))
			}
			for _, e := range m.Spec.PodMetricsEndpoints {
				for _, p := range selected {
					if !p.ports[e.Port] {
						problems = append(problems, fmt.Sprintf("PodMonitor %s scrapes port %q, which %s does not declare", m.Name, e.Port, p.owner))
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			selected := 0
			for _, svc := range services {
				if !matches(&m.Spec.Selector, labels.Set(svc.Labels)) {
					continue
				}
				selected++
				ports := map[string]bool{}
				for _, port := range svc.Spec.Ports {
					ports[port.Name] = true
				}
				for _, e := range m.Spec.Endpoints {
					if !ports[e.Port] {
						problems = append(problems, fmt.Sprintf("ServiceMonitor %s scrapes port %q, which Service %s does not expose", m.Name, e.Port, svc.Name))
					}
				}
			}
			if selected == 0 {
				problems = append(problems, fmt.Sprintf("ServiceMonitor %s selects no Service", m.Name))
			}
		}
	}
	return problems
}

// workloadSelector returns the pod selector of a workload, nil for a Pod.
func workloadSelector(value any) *metav1.LabelSelector {
	switch o := value.(type) {
	case *appsv1.Deployment:
		return o.Spec.Selector
	case *appsv1.StatefulSet:
		return o.Spec.Selector
	case *appsv1.DaemonSet:
		return o.Spec.Selector
	}
	return nil
}

// matches reports whether a non-empty label selector selects set. An empty
// selector selects nothing here: in a Service it would mean "no selector".
func matches(selector *metav1.LabelSelector, set labels.Set) bool {
	if len(selector.MatchLabels) == 0 && len(selector.MatchExpressions) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(selector)
	return err == nil && s.Matches(set)
}
