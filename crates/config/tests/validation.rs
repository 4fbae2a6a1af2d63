//! Every rule: the right message at the right line and column.

mod common;

use common::{error, errors, parse, BASE};

fn plan(body: &str) -> String {
    format!("{BASE}[[plan]]\nname = \"p\"\nsources = [\"app\"]\ntargets = [\"local\"]\n{body}")
}

/// Line of the first line of `body` in `plan(body)`.
const PLAN_BODY_LINE: usize = 12;

#[test]
fn syntax_errors_point_at_the_problem() {
    let (line, column, message) = error("[[source]]\nname = \"app\nurl = \"x\"\n");
    // Where the closing quote was expected.
    assert_eq!((line, column), (2, 12), "{message}");
    assert!(message.contains("string"), "{message}");
    assert!(!message.contains('\n'));
    let (line, column, _) = error("a = 1\n= 2\n");
    assert_eq!((line, column), (2, 1));
}

#[test]
fn type_errors_point_at_the_value() {
    let (line, column, message) = error(&plan("continuous = \"yes\"\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE, 14));
    assert!(message.contains("boolean"), "{message}");

    let (line, column, message) = error(&plan("schedule = \"every 1h\"\ndrill_at = \"oldest\"\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE + 1, 12));
    assert!(
        message.contains("oldest") && message.contains("latest or random"),
        "{message}"
    );

    let (line, column, message) = error(&plan("keep = { last = -1 }\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE, 17));
    assert!(message.contains("-1"), "{message}");

    let (line, column, message) = error("[[alert]]\nkind = \"pager\"\nurl = \"https://x\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(
        message.contains("pager") && message.contains("webhook"),
        "{message}"
    );

    // At the table that lacks it.
    assert_eq!(
        error("[[target]]\nname = \"t\"\n"),
        (1, 1, "missing required key \"url\"".to_string())
    );
}

#[test]
fn unknown_keys_are_all_reported_with_what_is_allowed() {
    let text = plan("shedule = \"every 15m\"\nkeep = { lats = 3 }\n")
        + "[agent]\nlisten = \"127.0.0.1:7070\"\ntokn = \"x\"\n[[alert]]\nkind = \"ping\"\nurl = \"https://x\"\nheaders = {}\n[[sources]]\n";
    let all = errors(&text);
    let line = PLAN_BODY_LINE;
    assert_eq!(
        all,
        [
            (
                line,
                1,
                "unknown key \"shedule\" in [[plan]]; expected one of name, sources, targets, \
                 schedule, continuous, keep, rpo, rto, drill, drill_at"
                    .to_string()
            ),
            (
                line + 1,
                10,
                "unknown key \"lats\" in the keep of a [[plan]]; expected one of last, hourly, \
                 daily, weekly, monthly, yearly, within, tags"
                    .to_string()
            ),
            (
                line + 4,
                1,
                "unknown key \"tokn\" in [agent]; expected one of listen, token, read_token, state, allow_remote"
                    .to_string()
            ),
            (
                line + 8,
                1,
                "unknown key \"headers\" in [[alert]]; expected one of kind, url, from, to"
                    .to_string()
            ),
            (
                line + 9,
                3,
                "unknown key \"sources\" at the top level; expected one of source, target, plan, \
                 agent, alert"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn unknown_keys_in_sources_and_targets() {
    let all = errors("[[source]]\nname = \"a\"\nurl = \"x\"\nurls = 1\n[[target]]\nname = \"t\"\nurl = \"x\"\npasword = \"x\"\n");
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].0, all[0].1), (4, 1));
    assert!(all[0].2.starts_with(
        "unknown key \"urls\" in [[source]]; expected one of name, url, command, checks"
    ));
    assert_eq!((all[1].0, all[1].1), (8, 1));
    assert!(all[1]
        .2
        .contains("in [[target]]; expected one of name, url, password, password_file"));
}

#[test]
fn missing_variables_are_named_and_no_value_leaks() {
    let text = "[[target]]\nname = \"t\"\nurl = \"s3://${DB_PASSWORD}/${BUCKET}\"\npassword = \"${LIFEBOAT_PASSWORD}${NOPE}\"\n";
    let all = errors(text);
    assert_eq!(
        all,
        [
            (3, 28, "environment variable BUCKET is not set".to_string()),
            (4, 33, "environment variable NOPE is not set".to_string()),
        ]
    );
    let display = parse(text).unwrap_err().to_string();
    assert!(!display.contains("db-password-value") && !display.contains("correct horse"));
    assert_eq!(
        display,
        "lifeboat.toml:3:28: environment variable BUCKET is not set\n\
         lifeboat.toml:4:33: environment variable NOPE is not set"
    );
}

#[test]
fn interpolation_applies_to_commands_tokens_and_alerts() {
    let text = "[[source]]\nname = \"s\"\ncommand = \"dump ${A1}\"\n[agent]\ntoken = \"${A2}\"\n\
                [[alert]]\nkind = \"email\"\nurl = \"smtp://${A3}\"\nfrom = \"${A4}\"\nto = [\"x\", \"${A5}\"]\n";
    let all = errors(text);
    let names: Vec<_> = all.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        names,
        (1..=5)
            .map(|i| format!("environment variable A{i} is not set"))
            .collect::<Vec<_>>()
    );
    assert_eq!((all[4].0, all[4].1), (10, 13));
}

#[test]
fn escaped_strings_point_at_the_value_start() {
    // With an escape, the bytes in the file are not the bytes of the value.
    let (line, column, _) = error("[[target]]\nname = \"t\"\nurl = \"\\u0041${NOPE}\"\n");
    assert_eq!((line, column), (3, 7));
    // Literal strings have no escapes: the reference itself.
    let (line, column, _) = error("[[target]]\nname = \"t\"\nurl = 'ab${NOPE}'\n");
    assert_eq!((line, column), (3, 10));
}

#[test]
fn empty_values_from_the_environment_are_errors() {
    assert_eq!(
        error("[agent]\ntoken = \"${EMPTY}\"\n"),
        (2, 9, "token is empty".to_string())
    );
}

#[test]
fn duplicate_names() {
    let text = format!(
        "{BASE}[[source]]\nname = \"app\"\nurl = \"./other\"\n[[target]]\nname = \"local\"\nurl = \"/x\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            (
                9,
                8,
                "duplicate source name \"app\" (first defined on line 3)".to_string()
            ),
            (
                12,
                8,
                "duplicate target name \"local\" (first defined on line 6)".to_string()
            ),
        ]
    );
    let text = plan("schedule = \"@daily\"\n")
        + "[[plan]]\nname = \"p\"\ncontinuous = true\nsources = [\"app\"]\ntargets = [\"local\"]\n";
    assert_eq!(
        error(&text),
        (
            PLAN_BODY_LINE + 2,
            8,
            "duplicate plan name \"p\" (first defined on line 9)".to_string()
        )
    );
}

#[test]
fn plans_must_name_known_sources_and_targets() {
    let text = format!(
        "{BASE}[[plan]]\nname = \"p\"\nsources = [\"app\", \"ap\"]\ntargets = [\"local\", \"remote\"]\nschedule = \"@daily\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            (
                10,
                19,
                "plan \"p\" names unknown source \"ap\" (defined: app)".to_string()
            ),
            (
                11,
                21,
                "plan \"p\" names unknown target \"remote\" (defined: local)".to_string()
            ),
        ]
    );
}

#[test]
fn plans_need_sources_and_targets() {
    let text = format!("{BASE}[[plan]]\nname = \"p\"\nsources = []\nschedule = \"@daily\"\n");
    assert_eq!(
        errors(&text),
        [
            (
                9,
                8,
                "plan \"p\" has no targets; list at least one in targets = [...]".to_string()
            ),
            (10, 11, "plan \"p\" has no sources".to_string()),
        ]
    );
    let text = plan("schedule = \"@daily\"\n").replace("[\"app\"]", "[\"app\", \"app\"]");
    assert_eq!(
        error(&text),
        (10, 19, "plan \"p\" lists source \"app\" twice".to_string())
    );
}

#[test]
fn a_source_has_exactly_one_of_url_and_command() {
    assert_eq!(
        error("[[source]]\nname = \"s\"\nurl = \"./x\"\ncommand = \"cat x\"\n"),
        (
            4,
            11,
            "source \"s\" has both url and command; give one".to_string()
        )
    );
    assert_eq!(
        error("[[source]]\nname = \"s\"\n"),
        (2, 8, "source \"s\" has neither url nor command".to_string())
    );
}

#[test]
fn impossible_schedules() {
    let (line, column, message) = error(&plan("schedule = \"0 0 31 2 *\"\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE, 12));
    assert_eq!(
        message,
        "bad schedule for plan \"p\": \"0 0 31 2 *\" never fires"
    );

    let (line, column, message) = error(&plan("schedule = \"every 0s\"\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE, 12));
    assert!(message.contains("zero"), "{message}");

    let (_, _, message) = error(&plan("schedule = \"*/15 * * *\"\n"));
    assert!(message.contains("has 4 fields"), "{message}");

    let (_, _, message) = error(&plan("schedule = \"0 25 * * *\"\n"));
    assert!(message.contains("not a valid cron pattern"), "{message}");
}

#[test]
fn a_plan_without_schedule_must_be_continuous() {
    assert_eq!(
        error(&plan("")),
        (
            9,
            8,
            "plan \"p\" has no schedule and is not continuous".to_string()
        )
    );
    assert!(parse(&plan("continuous = true\n")).is_ok());
}

#[test]
fn rpo_shorter_than_the_interval_can_never_be_met() {
    let (line, column, message) = error(&plan("schedule = \"every 15m\"\nrpo = \"1m\"\n"));
    assert_eq!((line, column), (PLAN_BODY_LINE + 1, 7));
    assert_eq!(
        message,
        "plan \"p\" can never meet its rpo of 1m: its schedule leaves up to 15m between backups; \
         schedule it more often or make it continuous"
    );
    // Weekdays only: the weekend gap counts.
    let (_, _, message) = error(&plan("schedule = \"0 2 * * 1-5\"\nrpo = \"1d\"\n"));
    assert!(message.contains("up to 3d"), "{message}");
    assert!(parse(&plan("schedule = \"every 15m\"\nrpo = \"15m\"\n")).is_ok());
    assert!(parse(&plan(
        "schedule = \"every 15m\"\nrpo = \"1m\"\ncontinuous = true\n"
    ))
    .is_ok());
}

#[test]
fn bad_durations() {
    let all = errors(&plan(
        "schedule = \"@daily\"\nrpo = \"5 minutes\"\nrto = \"0s\"\nkeep = { within = \"1y\" }\n",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!((all[0].0, all[0].1), (PLAN_BODY_LINE + 1, 7));
    assert!(all[0].2.starts_with("bad rpo: "), "{}", all[0].2);
    assert_eq!((all[1].0, all[1].1), (PLAN_BODY_LINE + 2, 7));
    assert!(all[1].2.contains("zero"), "{}", all[1].2);
    assert_eq!((all[2].0, all[2].1), (PLAN_BODY_LINE + 3, 19));
    assert!(all[2].2.contains("unknown unit \"y\""), "{}", all[2].2);
}

#[test]
fn keep_must_keep_something() {
    assert_eq!(
        error(&plan("schedule = \"@daily\"\nkeep = { last = 0 }\n")),
        (
            PLAN_BODY_LINE + 1,
            8,
            "keep of plan \"p\" keeps nothing; set last, hourly, daily, weekly, monthly, yearly, \
             within or tags"
                .to_string()
        )
    );
}

#[test]
fn agent_listens_on_loopback_unless_allowed_with_a_token() {
    let refused = |body: &str| error(&format!("[agent]\n{body}"));
    let (line, column, message) = refused("listen = \"0.0.0.0:7070\"\n");
    assert_eq!((line, column), (2, 10));
    assert_eq!(
        message,
        "agent would listen on 0.0.0.0:7070, which is not a loopback address; set allow_remote \
         = true and a token to accept connections from other hosts"
    );
    refused("listen = \"0.0.0.0:7070\"\nallow_remote = true\n");
    refused("listen = \"192.0.2.1:7070\"\ntoken = \"${LIFEBOAT_AGENT_TOKEN}\"\n");
    assert!(
        parse("[agent]\nlisten = \"0.0.0.0:7070\"\nallow_remote = true\ntoken = \"t\"\n").is_ok()
    );
    let (_, _, message) = refused("listen = \"example.com:80\"\n");
    assert!(message.contains("is not IP:port"), "{message}");
}

#[test]
fn alerts_need_urls_that_fit_their_kind() {
    let (line, column, message) = error("[[alert]]\nkind = \"webhook\"\nurl = \"ftp://x\"\n");
    assert_eq!((line, column), (3, 7));
    assert_eq!(message, "webhook alerts need an http:// or https:// url");
    let (_, _, message) =
        error("[[alert]]\nkind = \"slack\"\nurl = \"${ALERT_WEBHOOK_URL}x\"\nfrom = \"a@b\"\n");
    assert_eq!(message, "from and to apply only to email alerts");
    assert_eq!(
        errors("[[alert]]\nkind = \"email\"\nurl = \"https://mail\"\n"),
        [
            (
                2,
                8,
                "an email alert needs from = \"sender address\"".to_string()
            ),
            (
                2,
                8,
                "an email alert needs to = [\"recipient\", ...]".to_string()
            ),
            (
                3,
                7,
                "email alerts need an smtp:// or smtps:// url".to_string()
            ),
        ]
    );
}

#[test]
fn alert_messages_never_echo_the_url() {
    let text = "[[alert]]\nkind = \"email\"\nurl = \"${ALERT_WEBHOOK_URL}\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n";
    let display = parse(text).unwrap_err().to_string();
    assert!(!display.contains("secret-path"), "{display}");
}

#[test]
fn password_and_password_file_are_exclusive() {
    let text = "[[target]]\nname = \"t\"\nurl = \"/b\"\npassword = \"${LIFEBOAT_PASSWORD}\"\npassword_file = \"/p\"\n";
    assert_eq!(
        error(text),
        (
            5,
            17,
            "target \"t\" has both password and password_file; give one".to_string()
        )
    );
}

#[test]
fn independent_problems_are_all_reported() {
    let text = format!(
        "{BASE}[[source]]\nname = \"app\"\n[[plan]]\nname = \"p\"\nsources = [\"nope\"]\ntargets = []\n\
         schedule = \"every 0s\"\nkeep = {{}}\n[agent]\nlisten = \"0.0.0.0:1\"\n[[alert]]\nkind = \"ping\"\nurl = \"x\"\n"
    );
    let all = errors(&text);
    assert_eq!(all.len(), 8, "{all:#?}");
    let lines: Vec<usize> = all.iter().map(|e| e.0).collect();
    assert_eq!(lines, [9, 9, 12, 13, 14, 15, 17, 20]);
}

#[test]
fn a_read_token_must_differ_from_the_operators() {
    let text = format!("{BASE}[agent]\ntoken = \"same\"\nread_token = \"same\"\n");
    let lines = BASE.lines().count();
    let (line, column, message) = error(&text);
    assert_eq!((line, column), (lines + 3, 14), "{message}");
    assert!(
        message.contains("read_token is the same as token"),
        "{message}"
    );
    assert!(!message.contains("\"same\""), "a token leaked: {message}");
    assert!(parse(&format!(
        "{BASE}[agent]\ntoken = \"a\"\nread_token = \"b\"\n"
    ))
    .is_ok());
}
