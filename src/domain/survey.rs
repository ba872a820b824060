//! Surveys attached to a message (up to ten questions) and the answers guardians give.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::message::text;
use super::{FieldError, char_len};

pub const MAX_QUESTIONS: usize = 10;
pub const MAX_OPTIONS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    /// One option.
    Single,
    /// Any number of options.
    Multiple,
    /// Free text, at most 1,000 characters.
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    #[schema(example = "参加しますか")]
    pub text: String,
    pub kind: QuestionKind,
    #[serde(default)]
    #[schema(example = json!(["参加する", "参加しない"]))]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    /// Up to 10.
    pub questions: Vec<Question>,
}

pub fn check_survey(errors: &mut Vec<FieldError>, survey: &Survey) {
    if survey.questions.is_empty() {
        errors.push(FieldError::new("survey.questions", "a survey has at least one question"));
    }
    if survey.questions.len() > MAX_QUESTIONS {
        errors.push(FieldError::new(
            format!("survey.questions[{MAX_QUESTIONS}]"),
            format!("a survey has at most {MAX_QUESTIONS} questions"),
        ));
    }
    for (i, question) in survey.questions.iter().enumerate().take(MAX_QUESTIONS) {
        let field = format!("survey.questions[{i}]");
        text(errors, &format!("{field}.text"), &question.text, 200, true);
        match question.kind {
            QuestionKind::Text if !question.options.is_empty() => {
                errors.push(FieldError::new(format!("{field}.options"), "a text question has no options"));
            }
            QuestionKind::Single | QuestionKind::Multiple if question.options.is_empty() => {
                errors.push(FieldError::new(format!("{field}.options"), "a choice question needs options"));
            }
            _ => {}
        }
        if question.options.len() > MAX_OPTIONS {
            errors.push(FieldError::new(
                format!("{field}.options[{MAX_OPTIONS}]"),
                format!("a question has at most {MAX_OPTIONS} options"),
            ));
        }
        for (j, option) in question.options.iter().enumerate().take(MAX_OPTIONS) {
            text(errors, &format!("{field}.options[{j}]"), option, 100, true);
        }
    }
}

pub const MAX_ANSWER_TEXT: usize = 1_000;

/// One answer as a guardian sends it: option indexes for a choice question, text for a
/// text question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Answer)]
pub struct SurveyAnswer {
    /// The question's index in the survey, from 0.
    pub question: usize,
    /// Option indexes, from 0 (single: exactly one; multiple: one or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<usize>>,
    /// For text questions; at most 1,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Checks a complete set of answers against the survey: kinds, option indexes, required
/// questions, text lengths. Errors name `answers[i].…`, or `answers` for a missing one.
pub fn check_answers(survey: &Survey, answers: &[SurveyAnswer]) -> Result<Vec<SurveyAnswer>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    let mut checked = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let field = format!("answers[{i}]");
        let Some(question) = survey.questions.get(answer.question) else {
            errors.push(FieldError::new(
                format!("{field}.question"),
                format!("the survey has {} questions", survey.questions.len()),
            ));
            continue;
        };
        if seen.contains(&answer.question) {
            errors.push(FieldError::new(format!("{field}.question"), "answers this question a second time"));
            continue;
        }
        seen.push(answer.question);
        match question.kind {
            QuestionKind::Text => {
                if answer.choices.is_some() {
                    errors.push(FieldError::new(format!("{field}.choices"), "a text question is answered with text"));
                    continue;
                }
                let text = answer.text.as_deref().unwrap_or("").trim();
                if char_len(text) > MAX_ANSWER_TEXT {
                    errors.push(FieldError::new(
                        format!("{field}.text"),
                        format!("must be at most {MAX_ANSWER_TEXT} characters"),
                    ));
                    continue;
                }
                if text.is_empty() {
                    continue; // An empty text answer is no answer.
                }
                checked.push(SurveyAnswer { question: answer.question, choices: None, text: Some(text.to_string()) });
            }
            QuestionKind::Single | QuestionKind::Multiple => {
                if answer.text.is_some() {
                    errors.push(FieldError::new(format!("{field}.text"), "a choice question is answered with choices"));
                    continue;
                }
                let mut choices = answer.choices.clone().unwrap_or_default();
                if let Some(bad) = choices.iter().find(|c| **c >= question.options.len()) {
                    errors.push(FieldError::new(
                        format!("{field}.choices"),
                        format!("option {bad} does not exist (the question has {})", question.options.len()),
                    ));
                    continue;
                }
                choices.sort_unstable();
                choices.dedup();
                if question.kind == QuestionKind::Single && choices.len() > 1 {
                    errors.push(FieldError::new(format!("{field}.choices"), "choose one option"));
                    continue;
                }
                if choices.is_empty() {
                    continue;
                }
                checked.push(SurveyAnswer { question: answer.question, choices: Some(choices), text: None });
            }
        }
    }
    for (index, question) in survey.questions.iter().enumerate() {
        if question.required && !checked.iter().any(|a| a.question == index) && errors.is_empty() {
            errors.push(FieldError::new("answers", format!("question {index} ({}) is required", question.text)));
        }
    }
    if errors.is_empty() { Ok(checked) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey() -> Survey {
        Survey {
            questions: vec![
                Question {
                    text: "出欠".into(),
                    kind: QuestionKind::Single,
                    options: vec!["出席".into(), "欠席".into()],
                    required: true,
                },
                Question {
                    text: "係".into(),
                    kind: QuestionKind::Multiple,
                    options: vec!["受付".into(), "片付け".into(), "撮影".into()],
                    required: false,
                },
                Question { text: "連絡事項".into(), kind: QuestionKind::Text, options: vec![], required: false },
            ],
        }
    }

    fn answer(question: usize, choices: Option<Vec<usize>>, text: Option<&str>) -> SurveyAnswer {
        SurveyAnswer { question, choices, text: text.map(str::to_string) }
    }

    #[test]
    fn answers_are_checked_against_the_survey() {
        let ok = check_answers(
            &survey(),
            &[
                answer(0, Some(vec![1]), None),
                answer(1, Some(vec![2, 0, 2]), None),
                answer(2, None, Some(" よろしく ")),
            ],
        );
        let ok = ok.unwrap();
        assert_eq!(ok[1].choices, Some(vec![0, 2]), "sorted, duplicates folded");
        assert_eq!(ok[2].text.as_deref(), Some("よろしく"));
        let field = |answers: Vec<SurveyAnswer>| check_answers(&survey(), &answers).unwrap_err()[0].field.clone();
        assert_eq!(field(vec![answer(1, Some(vec![0]), None)]), "answers", "the required question is missing");
        assert_eq!(field(vec![answer(0, Some(vec![0, 1]), None)]), "answers[0].choices");
        assert_eq!(field(vec![answer(0, Some(vec![2]), None)]), "answers[0].choices");
        assert_eq!(field(vec![answer(0, Some(vec![0]), None), answer(3, Some(vec![0]), None)]), "answers[1].question");
        assert_eq!(
            field(vec![answer(0, Some(vec![0]), None), answer(2, None, Some(&"あ".repeat(1001)))]),
            "answers[1].text"
        );
        assert_eq!(field(vec![answer(0, Some(vec![0]), None), answer(0, Some(vec![1]), None)]), "answers[1].question");
        assert!(
            check_answers(&survey(), &[answer(0, Some(vec![0]), None), answer(2, None, Some(&"あ".repeat(1000)))])
                .is_ok()
        );
    }

    fn question(options: usize) -> Question {
        Question {
            text: "Q".into(),
            kind: QuestionKind::Single,
            options: (0..options).map(|i| i.to_string()).collect(),
            required: false,
        }
    }

    #[test]
    fn an_eleventh_question_is_named() {
        let mut errors = Vec::new();
        check_survey(&mut errors, &Survey { questions: vec![question(2); 11] });
        assert_eq!(errors, vec![FieldError::new("survey.questions[10]", "a survey has at most 10 questions")]);
    }

    #[test]
    fn an_eleventh_option_is_named() {
        let mut errors = Vec::new();
        check_survey(&mut errors, &Survey { questions: vec![question(2), question(11)] });
        assert_eq!(errors[0].field, "survey.questions[1].options[10]");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_kind() -> impl Strategy<Value = QuestionKind> {
        prop_oneof![Just(QuestionKind::Single), Just(QuestionKind::Multiple), Just(QuestionKind::Text)]
    }

    fn any_survey() -> impl Strategy<Value = Survey> {
        let question = (any_kind(), prop::collection::vec("\\PC{0,5}", 0..4), any::<bool>())
            .prop_map(|(kind, options, required)| Question { text: "問".into(), kind, options, required });
        prop::collection::vec(question, 0..5).prop_map(|questions| Survey { questions })
    }

    fn any_answers() -> impl Strategy<Value = Vec<SurveyAnswer>> {
        let answer =
            (0usize..8, prop::option::of(prop::collection::vec(0usize..8, 0..5)), prop::option::of("\\PC{0,1100}"))
                .prop_map(|(question, choices, text)| SurveyAnswer { question, choices, text });
        prop::collection::vec(answer, 0..8)
    }

    proptest! {
        /// Whatever a guardian sends, the answers are accepted or each error names a field
        /// of the request (`answers…`); never a panic.
        #[test]
        fn any_answers_are_accepted_or_refused_naming_the_field(survey in any_survey(), answers in any_answers()) {
            match check_answers(&survey, &answers) {
                Ok(checked) => prop_assert!(checked.len() <= answers.len()),
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    for error in errors {
                        prop_assert!(error.field.starts_with("answers"), "field {:?}", error.field);
                        prop_assert!(!error.message.is_empty());
                    }
                }
            }
        }
    }
}
