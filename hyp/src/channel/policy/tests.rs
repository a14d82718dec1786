use super::*;
use crate::vm::config::channel::{AccessRule, QuotaRule};

const PERSONAL: Who = 0;
const WORK: Who = 1;

fn default_policy() -> Policy {
    Policy::default_for(&["personal", "work"])
}

#[test]
fn a_personality_has_every_right_on_its_own_files() {
    let policy = default_policy();
    for who in [PERSONAL, WORK] {
        for access in Access::ALL {
            assert!(policy.allows(who, who, false, access));
            assert!(policy.allows(who, who, true, access));
        }
    }
}

#[test]
fn by_default_work_sees_and_reads_personal_files_only() {
    let policy = default_policy();
    assert!(policy.allows(WORK, PERSONAL, false, Access::See));
    assert!(policy.allows(WORK, PERSONAL, false, Access::Read));
    assert!(!policy.allows(WORK, PERSONAL, false, Access::Write));
    assert!(!policy.allows(WORK, PERSONAL, false, Access::Delete));
}

#[test]
fn by_default_work_files_are_invisible_in_personal() {
    let policy = default_policy();
    for access in Access::ALL {
        assert!(!policy.allows(PERSONAL, WORK, false, access));
    }
}

#[test]
fn released_files_are_seen_and_read_but_never_written_or_deleted() {
    let policy = default_policy();
    assert!(policy.allows(PERSONAL, WORK, true, Access::See));
    assert!(policy.allows(PERSONAL, WORK, true, Access::Read));
    assert!(!policy.allows(PERSONAL, WORK, true, Access::Write));
    assert!(!policy.allows(PERSONAL, WORK, true, Access::Delete));
}

#[test]
fn only_files_directly_in_the_release_folder_are_released() {
    assert!(Policy::is_released(Kind::File, true));
    assert!(!Policy::is_released(Kind::Dir, true));
    assert!(!Policy::is_released(Kind::File, false));
    assert!(!Policy::is_released(Kind::Dir, false));
}

#[test]
fn defaults_follow_names_not_indices() {
    let policy = Policy::default_for(&["work", "personal"]);
    assert!(policy.allows(0, 1, false, Access::Read));
    assert!(!policy.allows(1, 0, false, Access::See));
    assert_eq!(policy.manager(), Some(0));
}

#[test]
fn other_names_get_no_crossing_and_no_manager() {
    let policy = Policy::default_for(&["home", "office"]);
    for access in Access::ALL {
        assert!(!policy.allows(0, 1, false, access));
        assert!(!policy.allows(1, 0, false, access));
    }
    assert_eq!(policy.manager(), None);
}

#[test]
fn defaults_for_limits_folder_and_manager() {
    let policy = default_policy();
    assert_eq!(policy.quota(PERSONAL), Quota::UNLIMITED);
    assert_eq!(policy.quota(WORK), Quota::UNLIMITED);
    assert_eq!(policy.max_file_bytes(), UNLIMITED);
    assert_eq!(policy.release_folder(), "release");
    assert_eq!(policy.manager(), Some(WORK));
}

#[test]
fn unknown_personalities_get_nothing_of_others() {
    let policy = default_policy();
    for access in Access::ALL {
        assert!(!policy.allows(7, PERSONAL, false, access));
        assert!(!policy.allows(WORK, 7, false, access));
    }
    assert_eq!(policy.quota(7), Quota::UNLIMITED);
}

#[test]
fn a_rule_replaces_the_default_of_its_direction_only() {
    let config = ChannelConfig {
        access: alloc::vec![
            AccessRule {
                who: WORK,
                owner: PERSONAL,
                may: AccessSet::NONE,
            },
            AccessRule {
                who: PERSONAL,
                owner: WORK,
                may: AccessSet::ALL,
            },
        ],
        ..ChannelConfig::default()
    };
    let policy = Policy::new(&config, &["personal", "work"]);
    for access in Access::ALL {
        assert!(!policy.allows(WORK, PERSONAL, false, access));
        assert!(policy.allows(PERSONAL, WORK, false, access));
    }
    // Released still grants see and read whatever the rule says.
    assert!(policy.allows(WORK, PERSONAL, true, Access::Read));
}

#[test]
fn quotas_manager_folder_and_size_come_from_the_config() {
    let config = ChannelConfig {
        release_folder: "out",
        max_file_mib: Some(8),
        manager: Manager::Personality(PERSONAL),
        access: Vec::new(),
        quotas: alloc::vec![QuotaRule {
            who: WORK,
            max_mib: Some(3),
            max_files: Some(100),
        }],
    };
    let policy = Policy::new(&config, &["personal", "work"]);
    assert_eq!(policy.release_folder(), "out");
    assert_eq!(policy.max_file_bytes(), 8 << 20);
    assert_eq!(policy.manager(), Some(PERSONAL));
    assert_eq!(
        policy.quota(WORK),
        Quota {
            max_bytes: 3 << 20,
            max_files: 100
        }
    );
    assert_eq!(policy.quota(PERSONAL), Quota::UNLIMITED);
    let nobody = ChannelConfig {
        manager: Manager::Nobody,
        ..ChannelConfig::default()
    };
    assert_eq!(Policy::new(&nobody, &["personal", "work"]).manager(), None);
}

#[test]
fn every_rule_set_decides_as_its_bits_say() {
    for bits in 0..16u8 {
        let config = ChannelConfig {
            access: alloc::vec![AccessRule {
                who: PERSONAL,
                owner: WORK,
                may: AccessSet(bits),
            }],
            ..ChannelConfig::default()
        };
        let policy = Policy::new(&config, &["personal", "work"]);
        for access in Access::ALL {
            assert_eq!(
                policy.allows(PERSONAL, WORK, false, access),
                bits & access.bit() != 0
            );
        }
    }
}

#[test]
fn access_names_round_trip() {
    for access in Access::ALL {
        assert_eq!(Access::from_name(access.name()), Some(access));
    }
    assert_eq!(Access::from_name("execute"), None);
}
