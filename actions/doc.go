// Package actions carries card callbacks: the long-connection client and
// the HTTP callback's verification. Both transports decode Feishu's
// card.action.trigger body into one Callback and answer with one Answer;
// what a click does is the Handler's business.
package actions
