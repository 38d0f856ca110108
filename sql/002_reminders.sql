-- Reserved for the reminders work; replaced by its real content.
select 1;
